"""snnkit.Device (real pyserial) end to end against the emulated board (Verilated host_top):
spikes and on-chip STDP weights equal the fixed-point simulator's bit for bit; a lossy link
with default settings completes and never corrupts silently; a board swapped, restarted or
cut off mid-session is detected (or, with reconnect, reloaded and the work repeated); a
board that vanishes or is too small fails with DeviceError."""

import random
import re
import socket
import time

import numpy as np
import pytest
import serial
import torch

import snnkit
from snnkit import protocol as p
from snnkit.cli import main
from snnkit.compiler import HardwareConfig
from snnkit.device import Device
from snnkit.emulated_board import running
from snnkit.lossy_proxy import LossyProxy

from .conftest import make_net as fixture_net


def make_net(seed=0, stdp=False):
    """The shared fixture network with scalar parameters, quantised (what the board runs)."""
    return snnkit.quantize(fixture_net(seed, stdp, per_neuron=False))[0]


CONFIG = HardwareConfig.for_network(make_net(stdp=True))


def spikes_in(seed, steps=40, batch=2):
    return np.random.default_rng(seed).random((steps, batch, 12)) < 0.3


def assert_same_spikes(a, b):
    assert a.spikes.keys() == b.spikes.keys()
    for k in a.spikes:
        assert torch.equal(a.spikes[k], b.spikes[k]), k


@pytest.fixture(scope="session")
def board():
    with running(CONFIG) as (url, _proc):
        yield url


def test_identify_reports_the_built_configuration(board):
    port = board.rsplit(":", 1)[1]
    for url in (port, f"127.0.0.1:{port}", f"localhost:{port}"):  # the command line's forms
        with Device(url) as dev:
            assert dev.info.config == CONFIG
    with pytest.raises(snnkit.DeviceError, match="port 70000 is outside 1..65535"):
        Device("70000")
    with Device(board) as dev:
        assert dev.info.config == CONFIG
        assert (dev.info.neurons, dev.info.synapses) == (CONFIG.n_max, CONFIG.syn_max)
        assert dev.info.protocol_version == p.PROTOCOL_VERSION
        assert "stdp" in dev.info.features


def test_run_matches_fixed_point_simulator(board):
    net = make_net(seed=1)
    x = spikes_in(2)
    with Device(board) as dev:
        dev.load(net)
        res = dev.run(x)
        counters = dev.read_counters()
    assert_same_spikes(res, snnkit.simulate(net, x, backend="fixed"))
    assert counters["steps"] == x.shape[0] and counters["crc_errors"] == 0


def test_on_chip_stdp_weights_match_simulator(board):
    net = make_net(seed=3, stdp=True)
    x = spikes_in(4, steps=50, batch=2)
    ref = snnkit.simulate(net, x, backend="fixed")
    with Device(board) as dev:
        dev.load(net)
        before = dev.read_weights()
        res = dev.run(x)
        after = dev.read_weights()  # the last sample's weights stay on the board
        again = dev.run(x)  # from the load's weights again, not the learned ones
    assert_same_spikes(res, ref)
    assert_same_spikes(again, ref)
    assert torch.equal(again.weights["in->a"], ref.weights["in->a"])
    assert torch.equal(res.weights["in->a"], ref.weights["in->a"])
    assert torch.equal(after["in->a"], ref.weights["in->a"][-1])
    assert not torch.equal(before["in->a"], after["in->a"])  # it did learn
    assert torch.equal(after["a->b"], before["a->b"])  # not plastic


def test_learning_off_keeps_weights(board):
    net = make_net(seed=5, stdp=True)
    x = spikes_in(6, batch=1)
    with Device(board) as dev:
        with pytest.raises(snnkit.DeviceError, match=r"load: expected a snnkit.Network, got "
                                                     r"str \(a file: device.load\(snnkit.load"):
            dev.load("net.snn")
        dev.load(net)
        with pytest.raises(snnkit.DeviceError, match="set_learning: expected True or False"):
            dev.set_learning("no")  # would have switched learning on
        dev.set_learning(False)
        before = dev.read_weights()
        res = dev.run(x)
        assert torch.equal(dev.read_weights()["in->a"], before["in->a"])
        dev.set_learning(True)
        dev.run(x)  # learns: the board now holds the learned weights
        assert not torch.equal(dev.read_weights()["in->a"], before["in->a"])
        dev.set_learning(False)
        after = dev.run(x)  # from the load's weights again, not the learned ones
        assert torch.equal(dev.read_weights()["in->a"], before["in->a"])
    ref = snnkit.simulate(net, x, backend="fixed", learning=False)
    assert_same_spikes(res, ref)
    assert_same_spikes(after, ref)
    assert res.weights == {}


def test_board_too_small_is_refused_before_writing(board):
    big = snnkit.Network()
    big.add_input("in", 10)
    big.add_population("h", CONFIG.n_max, snnkit.LIF())
    big.connect("in", "h", 0.1)
    with Device(board) as dev:
        sent = dev.stats["frames"]
        with pytest.raises(snnkit.DeviceError, match="cannot hold"):
            dev.load(big)
        assert dev.stats["frames"] == sent


def test_accepts_an_open_port_and_survives_reconnects(board):
    for _ in range(2):
        port = serial.serial_for_url(board, timeout=0.05)
        with Device(port) as dev:
            assert dev.info.config == CONFIG
        assert port.is_open  # not ours to close
        port.close()


def test_the_boards_connection_log_is_drained_and_closed_with_it():
    """The board logs every connection on stdout; left unread, the pipe fills after ~1,600
    connections and the board blocks. running() reads it, and closes it with the board."""
    import fcntl
    import termios
    with running(CONFIG) as (url, proc):
        host, port = url.removeprefix("socket://").split(":")
        for _ in range(5):
            socket.create_connection((host, int(port))).close()
        with Device(url) as dev:  # answers after the five: they were accepted and logged
            assert dev.info.config == CONFIG
        unread = bytearray(4)
        for _ in range(100):  # the log's lines reach the pipe as the board writes them
            fcntl.ioctl(proc.stdout.fileno(), termios.FIONREAD, unread)
            if int.from_bytes(unread, "little") == 0:
                break
            time.sleep(0.05)
        assert int.from_bytes(unread, "little") == 0
    assert proc.stdout.closed


def test_garbage_on_the_link_then_commands_work(board):
    rng = random.Random(9)
    host, port = board.removeprefix("socket://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(bytes(rng.choice([0xA5, rng.randrange(256)]) for _ in range(2000)))
    with Device(board, timeout=0.5) as dev:  # the garbage may still be shifting in
        assert dev.info.config == CONFIG
        assert dev.read_region(p.Region.IDENT, 0, 1) == [0x534E4E31]


def test_silent_device_fails_in_bounded_time():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    url = f"socket://127.0.0.1:{srv.getsockname()[1]}"
    t0 = time.monotonic()
    with pytest.raises(snnkit.DeviceError, match="3 attempts"):
        Device(url, timeout=0.2, retries=2)
    with pytest.raises(snnkit.DeviceError, match="silent"):
        Device(url, timeout=0.5)  # default retries: silent for 0.5 s over 12 attempts
    assert time.monotonic() - t0 < 10
    srv.close()


def test_a_uart_divider_the_receiver_cannot_sample_is_refused_before_building(tmp_path):
    from snnkit.emulated_board import MIN_CLKS_PER_BIT, build

    for bad in (MIN_CLKS_PER_BIT - 1, 2.5, True):
        with pytest.raises(snnkit.SimulationError, match=f"clks_per_bit: must be an integer "
                                                         f">= {MIN_CLKS_PER_BIT}"):
            build(clks_per_bit=bad, cache=tmp_path)
    assert not any(tmp_path.iterdir())


def test_a_large_boards_frame_buffer_holds_its_steps(tmp_path):
    """host_cmd.v starts a step only with 2 + 2 * N_MAX + 4 bytes free in the response: a
    4096-byte buffer on a 2048-neuron board (what ``emulate --net`` sizes for a 784-1000-10
    network) never ran one ("board reports 0 of 1 steps done")."""
    from snnkit.emulated_board import MAX_PAYLOAD, build, payload_for, step_room

    assert payload_for(HardwareConfig()) == MAX_PAYLOAD  # the default board: as before
    for n, cores in ((2048, 1), (1024, 2), (4096, 1)):
        size = payload_for(HardwareConfig(n_max=n), cores)
        assert size >= 2 * step_room(HardwareConfig(n_max=n), cores) and size & (size - 1) == 0
    with pytest.raises(snnkit.SimulationError, match=r"max_payload: 4096 bytes cannot hold one "
                                                     r"step of a board of 2048 neurons \(4102"):
        build(HardwareConfig(n_max=2048), max_payload=4096, cache=tmp_path)
    assert not any(tmp_path.iterdir())


def test_vanished_device_raises_device_error():
    net = make_net(seed=1)
    with running(CONFIG) as (url, proc):
        dev = Device(url, timeout=0.2, retries=1)
        dev.load(net)
        proc.kill()
        proc.wait()
        with pytest.raises(snnkit.DeviceError):
            dev.run(spikes_in(1, batch=1))
        dev.close()


def test_lossy_link_with_default_settings_completes_and_never_corrupts(board):
    """1% of the bytes flipped, dropped or duplicated, plain Device(url): the load (verified
    by read-back) and every run complete, bit for bit the fixed-point simulator's."""
    net = make_net(seed=7)
    with LossyProxy(board, rate=0.01, seed=13) as proxy, Device(proxy.url) as dev:
        dev.load(net)
        for seed in range(2):
            x = spikes_in(seed, steps=25, batch=1)
            assert_same_spikes(dev.run(x), snnkit.simulate(net, x, backend="fixed"))
        stats = dict(dev.stats)
    assert proxy.faults > 50 and stats["resends"] > 10
    assert stats["payload_changes"] > 0 and stats["payload"] < dev.info.max_payload
    assert stats["crc_errors"] + stats["rejected"] > 0 and stats["timeouts"] > 0


def test_board_swapped_mid_session_is_detected(board):
    """The board behind the line is replaced by a fresh one (power cycle, FPGA reprogrammed):
    the next operation raises a DeviceError that says so, instead of running on a board
    without the network."""
    net = make_net(seed=1)
    x = spikes_in(2, steps=20, batch=1)
    with running(CONFIG) as (fresh, _), LossyProxy(board) as proxy, Device(proxy.url) as dev:
        dev.load(net)
        dev.run(x)
        proxy.retarget(fresh)
        with pytest.raises(snnkit.DeviceError, match="reset or replaced"):
            dev.run(x)
        with pytest.raises(snnkit.DeviceError, match="no network loaded|reset or replaced"):
            dev.read_weights()


def test_reconnect_reloads_after_a_board_swap_and_a_restart(board, tmp_path):
    """reconnect=True: after the board behind the line is swapped, and after the emulator
    process restarts on its port (the connection drops), the network is reloaded and the
    interrupted run repeated: results equal the fixed-point simulator's."""
    net = make_net(seed=3)
    x = spikes_in(4, steps=20, batch=2)
    ref = snnkit.simulate(net, x, backend="fixed")
    with running(CONFIG) as (fresh, proc), LossyProxy(board) as proxy, \
            Device(proxy.url, reconnect=True) as dev:
        dev.load(net)
        proxy.retarget(fresh)
        assert_same_spikes(dev.run(x), ref)
        assert (dev.stats["board_resets"], dev.stats["reconnects"]) == (1, 1)
        port = int(fresh.rsplit(":", 1)[1])
        proc.kill()
        proc.wait()
        with running(CONFIG, port=port):
            assert_same_spikes(dev.run(x), ref)
        assert dev.stats["board_resets"] == 2 and dev.stats["reconnects"] >= 2


def test_interrupted_upload_resumes_where_it_stopped(board):
    """The connection drops halfway through an upload; with reconnect the upload goes on
    from the last acknowledged frame (the board kept what it got) and is verified whole."""
    net = snnkit.Network(name="wide")
    net.add_input("in", 32)
    net.add_population("h", 30, snnkit.LIF(beta=0.8, threshold=1.0))
    net.connect("in", "h", np.random.default_rng(0).uniform(-1, 1, (30, 32)))
    net = snnkit.quantize(net)[0]
    with LossyProxy(board) as proxy:  # (frames of 128 bytes: the unit a resend repeats)
        with Device(proxy.url, max_payload=128) as dev:
            before = dev.stats["bytes_out"]
            dev.load(net)
            whole = dev.stats["bytes_out"] - before
        proxy.cut_after(whole // 2)
        with Device(proxy.url, max_payload=128, reconnect=True) as dev:
            before = dev.stats["bytes_out"]
            dev.load(net)
            sent = dev.stats["bytes_out"] - before
            assert dev.stats["reconnects"] == 1 and dev.stats["board_resets"] == 0
            x = np.random.default_rng(1).random((10, 1, 32)) < 0.3
            assert_same_spikes(dev.run(x), snnkit.simulate(net, x, backend="fixed"))
    assert whole < sent < 1.25 * whole  # not sent again from the start


def test_cli_deploy_and_run(board, tmp_path, capsys):
    net = make_net(seed=11)
    net.save(tmp_path / "net.snn")
    x = spikes_in(12)
    np.savez(tmp_path / "in.npz", inputs=x.astype(np.uint8))
    assert main(["deploy", str(tmp_path / "net.snn"), "--port", board]) == 0
    assert "verified" in capsys.readouterr().out
    assert main(["run", str(tmp_path / "net.snn"), "--port", board, "--input",
                 str(tmp_path / "in.npz"), "--steps", "40", "--out",
                 str(tmp_path / "out.npz"), "--verbose"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"link: \d+ frames sent, \d+ resent; 0 damaged responses", out)
    assert "frame size 4096 bytes after 0 changes" in out
    ref = snnkit.simulate(snnkit.load(tmp_path / "net.snn"), x, backend="fixed")
    with np.load(tmp_path / "out.npz") as f:
        for name, s in ref.spikes.items():
            assert np.array_equal(f[f"spikes/{name}"].astype(bool), s.numpy()), name


def test_pty_board():
    with running(CONFIG, pty=True) as (path, _proc), Device(path) as dev:
        assert dev.info.config == CONFIG


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_emulate_command_serves_across_clients_and_stops_on_a_signal(tmp_path, stop):
    import signal
    import subprocess
    import sys

    make_net(stdp=True).save(tmp_path / "net.snn")  # sizes the board like CONFIG: cached build
    # `snnkit emulate`, started as a shell starts a background job: with SIGINT ignored
    proc = subprocess.Popen([sys.executable, "-m", "snnkit", "emulate", "--port", "0", "--net",
                             str(tmp_path / "net.snn")], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        url = None
        for line in proc.stdout:
            if line.startswith("emulated board on "):
                url = line.split()[3]
                break
        assert url and url.startswith("socket://127.0.0.1:")
        for _ in range(2):  # a second client after the first disconnected
            with Device(url) as dev:
                assert dev.info.config == CONFIG
        proc.send_signal(getattr(signal, stop))
        assert proc.wait(timeout=20) == {"SIGINT": 130, "SIGTERM": 143}[stop]  # stopped, not done
    finally:
        if proc.poll() is None:
            proc.kill()
    host, port = url.removeprefix("socket://").split(":")
    with pytest.raises(OSError):
        socket.create_connection((host, int(port)), timeout=1).close()


def test_read_state_and_counters_after_a_run(board):
    net = make_net(seed=21)
    x = spikes_in(22, steps=30, batch=1)
    ref = snnkit.simulate(net, x, backend="fixed", record=("v", "i", "theta"))
    with Device(board) as dev:
        before = dev.read_counters()  # link counters count since power-on, across clients
        dev.load(net)
        dev.run(x)
        state = dev.read_state()
        counters = dev.read_counters()
    for pop in net.neuron_populations:
        for var in ("v", "i", "theta"):
            assert np.array_equal(state[pop.name][var], ref.states[pop.name][var][-1, 0].numpy()), \
                (pop.name, var)
    assert counters["steps"] == 30 and counters["synaptic_events"] > 0
    # every frame the driver sent after the two reads of `before` (IDENTIFY + 2 frames)
    assert counters["frames_received"] - before["frames_received"] == dev.stats["frames"] - 3
    assert counters["crc_errors"] == before["crc_errors"]


def test_ice40_buffer_size_is_learned_and_holds_a_full_step():
    """A board with the iCE40 build's 1024-byte frame buffers (firmware/ice40/icebreaker_top.v)
    and 256 neurons: the driver takes the size from IDENTIFY, and a step in which all 252
    output neurons spike (a 506-byte response) still runs, equal to the fixed point."""
    net = snnkit.Network(name="all-spiking")
    net.add_input("in", 4)
    net.add_population("a", 252, snnkit.LIF(beta=0.5, threshold=0.25, bias=0.5))
    net.connect("in", "a", 0.25)
    net = snnkit.quantize(net)[0]
    config = HardwareConfig.for_network(net)
    assert config.n_max == 256
    x = np.random.default_rng(5).random((6, 1, 4)) < 0.5
    with running(config, max_payload=1024) as (url, _proc), Device(url) as dev:
        assert dev.info.max_payload == dev.max_payload == 1024
        dev.load(net)
        res = dev.run(x)
    ref = snnkit.simulate(net, x, backend="fixed")
    assert_same_spikes(res, ref)
    assert int(ref.spikes["a"].sum()) == 6 * 252  # every neuron, every step


def test_load_with_progress_shows_the_upload_to_its_end(board, capsys):
    """The bar's total is the upload's payload (written and read back): a clean link ends
    it at exactly 100%."""
    with Device(board) as dev:
        dev.load(make_net(seed=3), progress=True)
    err = capsys.readouterr().err
    assert re.search(r"upload: 100%\|[^\n\r]*\| (\S+)/\1 ", err), err[-300:]


def test_board_with_the_native_delayed_reset(tmp_path):
    """A board built for a network with snntorch's delayed reset has the delayed_reset
    feature (IDENTIFY says so); Device.load writes C1, C2 instead of self-projections and the
    spikes equal the fixed-point simulator's."""
    rng = np.random.default_rng(5)
    net = snnkit.Network()
    net.add_input("in", 12)
    net.add_population("a", 10, snnkit.CubaLIF(alpha=0.5, beta=0.875, threshold=0.5,
                                               reset="delayed"))
    net.add_population("b", 6, snnkit.LIF(beta=0.75, threshold=0.4, reset="delayed"))
    net.connect("in", "a", rng.uniform(-0.1, 0.4, (10, 12)))
    net.connect("a", "b", rng.uniform(-0.1, 0.4, (6, 10)))
    net = snnkit.quantize(net)[0]
    config = HardwareConfig.for_network(net)
    assert config.delayed_reset
    x = spikes_in(6, steps=30)
    with running(config) as (url, _proc), Device(url) as dev:
        assert "delayed_reset" in dev.info.features and dev.info.config == config
        dev.load(net)
        res = dev.run(x)
    ref = snnkit.simulate(net, x, backend="fixed")
    assert ref.spikes["a"].any() and ref.spikes["b"].any()
    assert_same_spikes(res, ref)
