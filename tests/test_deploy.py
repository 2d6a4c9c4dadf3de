"""Deploy what users bring: every network the project produces or imports goes onto the
default emulated board (``snnkit emulate`` without --net: 256 neurons, 8-bit weights, 6
fractional bits) with the documented commands, quantised to the board's format, and runs
spike for spike as the fixed-point simulator; what cannot fit is refused before writing."""

import signal
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import snnkit
from snnkit import datasets, encoders
from snnkit.board_format import board_quantization, to_board
from snnkit.build import build
from snnkit.compiler import HardwareConfig
from snnkit.convert import convert
from snnkit.device import Device
from snnkit.lowering import lower

from .test_conv import _conv_net
from .test_hdl_nets import per_neuron_net

DEFAULT = HardwareConfig()  # the board `snnkit emulate` serves without --net


def snnkit_cli(*args, timeout=300) -> str:
    """Run ``snnkit ARGS`` as a user would (a new process); return its stdout."""
    proc = subprocess.run([sys.executable, "-m", "snnkit", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def board():
    """``snnkit emulate --port 0``: the default emulated board, served by the command."""
    proc = subprocess.Popen([sys.executable, "-m", "snnkit", "emulate", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stdout:
            if line.startswith("emulated board on "):
                url = line.split()[3]
                break
        assert url, "snnkit emulate did not start"
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def demo_network():
    """The demo's converted network (snnkit demo: QCFS MLP, rate mode; 9 fractional bits)."""
    x_tr, _, x_te, _ = datasets.digits()
    ann = datasets.train_qcfs("mlp", levels=16)  # cached
    return convert(ann, x_tr[:500], mode="rate", input="poisson", v_init=0.5).network, x_te


def deploy_and_run(tmp_path, board, net_path, x, steps):
    """``snnkit deploy`` then ``snnkit run`` on the command line; the run's spikes."""
    np.savez(tmp_path / "in.npz", inputs=np.asarray(x, np.uint8))
    out = snnkit_cli("deploy", net_path, "--port", board)
    assert "quantisation to the board's format" in out and "loaded and verified" in out
    snnkit_cli("run", net_path, "--port", board, "--input", tmp_path / "in.npz", "--steps",
               steps, "--out", tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as f:
        return {k.split("/", 1)[1]: torch.from_numpy(f[k].astype(bool)) for k in f.files
                if k.startswith("spikes/")}


def run_on_board(board, net, x):
    """Load ``net``, run ``x``: the board's result, and the fixed-point simulator's on the
    network as the board holds it (its format)."""
    with Device(board) as dev:
        dev.load(net)
        res = dev.run(x)
        board_net = dev.net
    return res, snnkit.simulate(board_net, x, backend="fixed")


def assert_spikes_equal(got, ref):
    assert set(got) == set(ref.spikes)
    for name, s in ref.spikes.items():
        assert torch.equal(got[name], s.cpu().bool()), name


def test_demo_network_through_emulate_deploy_run(board, tmp_path):
    """The demo's network (more fractional bits) on the default board (built for 6): deployed
    in its own format (the core does not depend on the fractional bits), every spike equal."""
    net, x_te = demo_network()
    assert net.quantization.frac_bits != DEFAULT.frac_bits
    assert board_quantization(net, DEFAULT) == net.quantization  # kept as it is
    net.save(tmp_path / "digits.snn")
    x = encoders.regular(x_te[:12], 16)
    got = deploy_and_run(tmp_path, board, tmp_path / "digits.snn", x, 16)
    ref = snnkit.simulate(net, x, 16, backend="fixed")
    assert_spikes_equal(got, ref)
    assert int(ref.spikes["output"].sum()) > 0


def test_convert_default_output_through_emulate_deploy_run(board, tmp_path):
    """`snnkit convert`'s default output (spike input) deploys and runs as simulated."""
    out = snnkit_cli("convert", "example:mlp", "-o", tmp_path / "conv.snn")
    assert "spikes input" in out
    net = snnkit.load(tmp_path / "conv.snn")
    assert net.populations[0].encoding == "spikes"
    _, _, x_te, _ = datasets.digits()
    x = encoders.regular(x_te[:10], 32)  # the conversion's encoding, 32 steps (its default)
    got = deploy_and_run(tmp_path, board, tmp_path / "conv.snn", x, 32)
    ref = snnkit.simulate(to_board(net, DEFAULT).net, x, 32, backend="fixed")
    assert_spikes_equal(got, ref)
    assert int(ref.spikes["output"].sum()) > 0


def test_per_neuron_biases_and_parameters_on_the_board(board):
    """A different bias for every neuron and per-neuron thresholds, decays, v_init, v_reset,
    adaptation and refractory periods, with on-chip STDP: spikes and learned weights as the
    fixed point's."""
    net = per_neuron_net(3, stdp=True)
    assert lower(net).split
    x = np.random.default_rng(3).random((40, 2, net.n_inputs)) < 0.4
    with Device(board) as dev, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = dev.load(net)
        assert not [w for w in caught if "in->a." in str(w.message)]  # no split's repeats
        assert report.max_weight_error == 0  # 6 fractional bits, as built: nothing rounded
        res = dev.run(x)
        state = dev.read_state()
    ref = snnkit.simulate(net, x, backend="fixed", record=("v",))
    assert_spikes_equal(res.spikes, ref)
    assert torch.equal(res.weights["in->a"], ref.weights["in->a"])
    for pop in net.neuron_populations:
        assert np.array_equal(state[pop.name]["v"], ref.states[pop.name]["v"][-1, -1].numpy())


def test_snntorch_model_with_biases_through_nir(board):
    """snntorch Linear + Leaky layers (a bias per neuron, snntorch's reset), exported to NIR,
    imported, deployed as the board's format: every spike as the fixed point's."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    fc1, fc2 = torch.nn.Linear(20, 16), torch.nn.Linear(16, 4)
    with torch.no_grad():
        fc1.weight.mul_(4)
        fc2.weight.mul_(4)
    l1 = snn.Leaky(beta=torch.full((16,), 0.9), threshold=torch.ones(16), init_hidden=True)
    l2 = snn.Leaky(beta=torch.full((4,), 0.9), threshold=torch.ones(4), init_hidden=True)
    graph = export_to_nir(torch.nn.Sequential(fc1, l1, fc2, l2), torch.zeros(20))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = snnkit.from_nir(graph, dt=1e-4, convention="snntorch")
    assert len(np.unique(net.population("1").neuron.bias)) == 16
    x = np.random.default_rng(1).random((50, 2, 20)) < 0.5
    res, ref = run_on_board(board, net, x)
    assert_spikes_equal(res.spikes, ref)
    assert 0 < float(ref.spikes["1"].float().mean()) < 1


def test_convolutional_network_on_the_board(board):
    """Convolution projections (shared kernels, stride, padding) go to the board expanded to
    dense weight words (docs/hardware.md): every spike as the fixed point's."""
    net = _conv_net()
    assert any(p.conv is not None for p in net.projections)
    x = np.random.default_rng(0).random((30, 2, net.n_inputs)) < 0.3
    res, ref = run_on_board(board, net, x)
    assert_spikes_equal(res.spikes, ref)
    assert int(ref.spikes["out"].sum()) > 0


# --------------------------------------------------------------------------- the format


def test_board_format_keeps_a_fitting_network_and_requantises_the_rest():
    net, _ = demo_network()
    # a float network takes the most fractional bits that fit the board's widths
    flt = snnkit.Network()
    flt.add_input("in", 3)
    flt.add_population("a", 2, snnkit.LIF(threshold=1.5, bias=np.array([0.25, -0.5])))
    flt.connect("in", "a", 0.75)
    q = board_quantization(flt, DEFAULT)
    assert (q.weight_bits, q.state_bits, q.frac_bits) == (8, 16, 7)  # 0.75 * 2^7 = 96 < 128
    # soft-bound STDP depends on the core's FRAC: requantised to it
    flt.connect("a", "a", 0.1, delay=1, stdp=snnkit.STDP(bounds="soft", w_min=-1, w_max=1))
    assert board_quantization(flt, DEFAULT).frac_bits == DEFAULT.frac_bits
    # snntorch's delayed reset runs as self-synapses of weight -thr * (1 - beta): they must
    # fit the weights too (from the weights alone 11 fractional bits made them -205 LSB,
    # refused at compile with advice that led back to the same format)
    dl = snnkit.Network()
    dl.add_input("in", 3)
    dl.add_population("a", 2, snnkit.LIF(beta=0.9, threshold=1.0, reset="delayed"))
    dl.connect("in", "a", 0.05)  # 0.05 * 2^11 = 102 < 128: the weights alone allow 11
    assert board_quantization(dl, DEFAULT).frac_bits == 10  # the reset: -102 LSB at 10
    assert to_board(dl, DEFAULT).net.quantization.frac_bits == 10
    # other widths: the network is requantised and the report says by how much
    narrow = HardwareConfig(weight_bits=6, state_bits=12)
    fit = to_board(net, narrow)
    assert fit.net.quantization.weight_bits == 6 and fit.quantization.max_weight_error > 0


def test_what_cannot_fit_is_refused_before_writing(board, tmp_path):
    big = snnkit.Network()
    big.add_input("in", 4)
    big.add_population("h", 3, snnkit.LIF())
    big.connect("in", "h", 300.0)  # 300 > 127 LSB even with 0 fractional bits
    with Device(board) as dev:
        sent = dev.stats["frames"]
        with pytest.raises(snnkit.DeviceError, match=r"in->h.weight: \|value\| 300 does not "
                           r"fit.*2.36 times too large.*snnkit emulate --net"):
            dev.load(big)
        assert dev.stats["frames"] == sent  # nothing was written
        # what no board takes: refused naming it, without advice to size a board
        cur = snnkit.Network()
        cur.add_input("in", 4, encoding="current")
        cur.add_population("h", 3, snnkit.LIF())
        cur.connect("in", "h", 0.5)
        with pytest.raises(snnkit.DeviceError, match=r"\(in\).encoding: current inputs are "
                           r"not supported.*input='spikes'\)$"):
            dev.load(cur)
        assert dev.stats["frames"] == sent
    wide = snnkit.Network()
    wide.add_input("in", 300)
    wide.add_population("h", 10, snnkit.LIF())
    wide.connect("in", "h", 0.1)
    wide.save(tmp_path / "wide.snn")
    proc = subprocess.run([sys.executable, "-m", "snnkit", "deploy", str(tmp_path / "wide.snn"),
                           "--port", board], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1  # the work failed (snnkit.cli; test_cli's deploy "wrong shape")
    assert "310 neurons (inputs included) needed, 256 available (54 too many)" in proc.stderr
    assert "snnkit emulate --net" in proc.stderr
    # `emulate --net` sizes a one-core board: with --cores it is refused, not ignored
    proc = subprocess.run([sys.executable, "-m", "snnkit", "emulate", "--port", "0", "--net",
                           str(tmp_path / "wide.snn"), "--cores", "2"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "--net with --cores 2" in proc.stderr, proc.stderr
    # an FPGA build that cannot hold the network: refused before anything is written
    huge = snnkit.Network()
    huge.add_input("in", 784)
    huge.add_population("h", 1000, snnkit.LIF())
    huge.connect("in", "h", 0.01)
    with pytest.raises(snnkit.NetworkError, match="SPRAMs .* too many"):
        build(huge, "ice40", tmp_path / "fpga")
    assert not (tmp_path / "fpga").exists()


def test_the_most_negative_word_keeps_the_networks_format():
    """A weight of exactly -2^(b-1) LSB (-128 in 8 bits: what training in the board's
    integers produces at the bound) fits; the board keeps the network's fractional bits, so
    the board computes the integers that training and the fixed-point simulator computed."""
    net = snnkit.Network(quantization=snnkit.Quantization(frac_bits=9))
    net.add_input("in", 4)
    net.add_population("h", 3, snnkit.LIF(beta=0.9))
    net.connect("in", "h", np.array([[-0.25, 0.248046875, 0.1, 0.0]] * 3))
    board = HardwareConfig.for_network(net)
    assert board_quantization(net, board).frac_bits == 9
    net.projections[0].weight[0, 0] = -0.2519  # -129 LSB: one bit fewer
    assert board_quantization(net, board).frac_bits == 8
