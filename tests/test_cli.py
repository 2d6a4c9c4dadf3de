"""The command line as a person uses it: every subcommand fails as a one-line message (never a
traceback) on a table of bad inputs, checks its outputs before working, keeps finished work
when interrupted, and its results reload and plot."""

import argparse
import importlib
import io
import json
import os
import signal
import socket
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import snnkit
from snnkit.cli import build_parser, main
from snnkit.cli.common import port_url, socket_address
from snnkit.emulated_board import running
from snnkit.result import Result

from .conftest import make_net
from .test_device_emulator import CONFIG
from .test_device_emulator import make_net as board_net

CATEGORIES = ("missing", "wrong type", "wrong shape", "unwritable output", "existing output",
              "interrupted")


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A folder of good and bad files for every command."""
    d = tmp_path_factory.mktemp("cli")
    net = make_net(stdp=True, per_neuron=False)
    net.save(d / "net.snn")
    board_net(seed=5).save(d / "board.snn")
    big = snnkit.Network()
    big.add_input("in", 300)
    big.add_population("h", 300)
    big.connect("in", "h", 0.01)
    big.save(d / "big.snn")  # more than CONFIG's board holds
    x = np.random.default_rng(0).random((20, 3, 12)) < 0.3
    np.savez(d / "in.npz", inputs=x)
    np.save(d / "in.npy", x)
    np.savez(d / "bad_shape.npz", inputs=x[:, :, :11])
    (d / "notes.txt").write_text("not a numpy file\n")
    (d / "afile").write_text("a file where a folder is expected\n")
    (d / "adir").mkdir()
    (d / "sweep.toml").write_text('name = "s"\ntask = "convert"\n[grid]\nsteps = [4]\n')
    (d / "sweep_bad.toml").write_text('name = "s"\ntask = "convert"\nbogus = 1\n')
    with zipfile.ZipFile(d / "net.snn") as z:  # a network file with a wrong-shaped array
        items = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 2)))
    items["arrays/projections.0.weight.npy"] = buf.getvalue()
    with zipfile.ZipFile(d / "bad_shape.snn", "w") as z:
        for n, b in items.items():
            z.writestr(n, b)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    torch.jit.save(torch.jit.script(model), d / "model.pt")  # read without unpickling code
    np.save(d / "calib.npy", np.random.default_rng(1).random((20, 4)))
    np.savez(d / "train.npz", x_train=np.random.default_rng(2).random((8, 12)),
             y_train=np.arange(8) % 3)
    np.savez(d / "train_bad.npz", x_train=np.random.default_rng(2).random((8, 5)),
             y_train=np.arange(8) % 3)
    np.save(d / "calib5.npy", np.random.default_rng(1).random((20, 5)))
    res = snnkit.simulate(net, x, backend="fixed", record=("v",))
    res.save(d / "res.npz")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        d.joinpath("dead_port").write_text(str(s.getsockname()[1]))
    return d


@pytest.fixture(scope="module")
def board_url():
    with running(CONFIG) as (url, _proc):
        yield url


def raise_interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def interrupt_second_call(real):
    """``real`` that raises KeyboardInterrupt when called the second time (a Ctrl-C in the
    middle of a batch, after its first group of samples)."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return wrapped


N_A = "n/a"
# command -> category -> (args, exit status, what stderr names, patch) or (N_A, why); {d} is
# the work folder, {port} a dead port, {board} the emulated board's URL. patch: (object path,
# attribute, replacement factory) to interrupt the command from inside
TABLE = {
    "info": {
        "missing": ("info {d}/nope.snn", 2, "no such file"),
        "wrong type": ("info {d}/notes.txt", 1, "not a snnkit network file"),
        "wrong shape": ("info {d}/bad_shape.snn", 1, "projections[0]"),
        "unwritable output": (N_A, "info writes nothing"),
        "existing output": (N_A, "info writes nothing"),
        "interrupted": ("info {d}/net.snn", 130, "stopped by Ctrl-C",
                        ("snnkit.cli.info", "load_net", lambda real: raise_interrupt)),
    },
    "simulate": {
        "missing": ("simulate {d}/net.snn --input {d}/nope.npz --out {d}/o.npz", 2,
                    "--input: no such file"),
        "wrong type": ("simulate {d}/net.snn --input {d}/notes.txt --out {d}/o.npz", 2,
                       "not a numpy .npz or .npy file"),
        "wrong shape": ("simulate {d}/net.snn --input {d}/bad_shape.npz --out {d}/o.npz", 1,
                        "last dimension is 11"),
        "unwritable output": ("simulate {d}/net.snn --input {d}/in.npz --out {d}/afile/o.npz",
                              2, "is not a folder"),
        "existing output": ("simulate {d}/net.snn --input {d}/in.npz --out {d}/adir", 2,
                            "is a folder; name a file"),
        "interrupted": ("simulate {d}/net.snn --input {d}/in.npz --backend fixed "
                        "--out {d}/partial.npz", 130, "stopped by Ctrl-C",
                        ("snnkit.simulator.Simulator", "run", interrupt_second_call)),
    },
    "plot": {
        "missing": ("plot {d}/nope.npz", 2, "no such file"),
        "wrong type": ("plot {d}/in.npz", 1, "unexpected array 'inputs'"),
        "wrong shape": ("plot {d}/res.npz --sample 7", 2, "--sample: 7 is outside"),
        "unwritable output": ("plot {d}/res.npz --raster {d}/afile/r.png", 2, "is not a folder"),
        "existing output": ("plot {d}/res.npz --membrane {d}/adir", 2, "is a folder"),
        "interrupted": ("plot {d}/res.npz --raster {d}/never.png", 130, "stopped by Ctrl-C",
                        ("snnkit.plot", "raster", lambda real: raise_interrupt)),
    },
    "train": {
        "missing": ("train {d}/nope.snn --data {d}/train.npz -o {d}/t.snn", 2, "no such file"),
        "wrong type": ("train {d}/net.snn --data {d}/notes.txt -o {d}/t.snn", 2,
                       "--data: cannot read"),
        "wrong shape": ("train {d}/net.snn --data {d}/train_bad.npz -o {d}/t.snn --quiet", 1,
                        "5 values per sample"),
        "unwritable output": ("train {d}/net.snn --data {d}/train.npz -o {d}/afile/t.snn", 2,
                              "is not a folder"),
        "existing output": ("train {d}/net.snn --data {d}/train.npz -o {d}/adir", 2,
                            "is a folder"),
        "interrupted": ("train {d}/net.snn --data {d}/train.npz -o {d}/never.snn", 130,
                        "stopped by Ctrl-C",
                        ("snnkit.cli.train", "fit", lambda real: raise_interrupt)),
    },
    "convert": {
        "missing": ("convert {d}/nope.pt --calib {d}/calib.npy -o {d}/c.snn", 2,
                    "MODEL: no such file"),
        "wrong type": ("convert {d}/model.pt --calib {d}/notes.txt -o {d}/c.snn", 2,
                       "--calib"),
        "wrong shape": ("convert {d}/model.pt --calib {d}/calib5.npy -o {d}/c.snn", 1,
                        "cannot be applied to input shape (5,)"),
        "unwritable output": ("convert {d}/model.pt --calib {d}/calib.npy -o {d}/afile/c.snn",
                              2, "is not a folder"),
        "existing output": ("convert {d}/model.pt --calib {d}/calib.npy -o {d}/adir", 2,
                            "is a folder"),
        "interrupted": ("convert {d}/model.pt --calib {d}/calib.npy -o {d}/never.snn", 130,
                        "stopped by Ctrl-C",
                        ("snnkit.cli.convert", "convert", lambda real: raise_interrupt)),
    },
    "compile": {
        "missing": ("compile {d}/nope.snn -o {d}/out", 2, "no such file"),
        "wrong type": ("compile {d}/in.npz -o {d}/out", 1, "not a snnkit network file"),
        "wrong shape": ("compile {d}/net.snn -o {d}/out --n-max 16", 1,
                        "does not fit the hardware"),
        "unwritable output": ("compile {d}/net.snn -o {d}/afile/out", 2, "is not a folder"),
        "existing output": ("compile {d}/net.snn -o {d}/afile", 2, "exists and is not a folder"),
        "interrupted": ("compile {d}/net.snn -o {d}/never", 130, "stopped by Ctrl-C",
                        ("snnkit.cli.hardware", "compile", lambda real: raise_interrupt)),
    },
    "emulate": {
        "missing": ("emulate --port 0 --net {d}/nope.snn", 2, "--net: no such file"),
        "wrong type": ("emulate --port /dev/ttyUSB0", 2, "expected a TCP port"),
        "wrong shape": ("emulate --port 70000", 2, "port 70000 is outside"),
        "unwritable output": (N_A, "emulate writes nothing"),
        "existing output": (N_A, "emulate writes nothing"),
        "interrupted": ("emulate --port 0 --net {d}/net.snn", 130, "stopped by Ctrl-C",
                        ("snnkit.cli.board", "load_net", lambda real: raise_interrupt)),
    },
    "deploy": {
        "missing": ("deploy {d}/nope.snn --port {board}", 2, "no such file"),
        "wrong type": ("deploy {d}/notes.txt --port {board}", 1, "not a snnkit network file"),
        "wrong shape": ("deploy {d}/big.snn --port {board}", 1, "cannot hold this network"),
        "unwritable output": (N_A, "deploy writes nothing"),
        "existing output": (N_A, "deploy writes nothing"),
        "interrupted": ("deploy {d}/board.snn --port {board}", 130, "stopped by Ctrl-C",
                        ("snnkit.cli.board", "Device", lambda real: raise_interrupt)),
    },
    "run": {  # inputs and outputs are checked before the (dead) port is opened
        "missing": ("run {d}/board.snn --port {port} --input {d}/nope.npz --out {d}/o.npz", 2,
                    "--input: no such file"),
        "wrong type": ("run {d}/board.snn --port {port} --input {d}/notes.txt --out {d}/o.npz",
                       2, "not a numpy .npz or .npy file"),
        "wrong shape": ("run {d}/board.snn --port {port} --input {d}/bad_shape.npz "
                        "--out {d}/o.npz", 1, "last dimension is 11"),
        "unwritable output": ("run {d}/board.snn --port {port} --input {d}/in.npz "
                              "--out {d}/afile/o.npz", 2, "is not a folder"),
        "existing output": ("run {d}/board.snn --port {port} --input {d}/in.npz --out {d}/adir",
                            2, "is a folder; name a file"),
        "interrupted": ("run {d}/board.snn --port {board} --input {d}/in.npz "
                        "--out {d}/board_partial.npz", 130, "stopped by Ctrl-C",
                        ("snnkit.device.Device", "run", interrupt_second_call)),
    },
    "build": {
        "missing": ("build {d}/nope.snn --board ice40 -o {d}/b", 2, "no such file"),
        "wrong type": ("build {d}/net.snn --board nope -o {d}/b", 2, "invalid choice"),
        "wrong shape": ("build {d}/net.snn --board ice40 -o {d}/b --clock -5", 2,
                        "--clock: must be a positive"),
        "unwritable output": ("build {d}/net.snn --board ice40 -o {d}/afile/b", 2,
                              "is not a folder"),
        "existing output": ("build {d}/net.snn --board ice40 -o {d}/afile", 2,
                            "exists and is not a folder"),
        "interrupted": ("build {d}/net.snn --board cmod_a7 -o {d}/never", 130,
                        "stopped by Ctrl-C",
                        ("snnkit.cli.hardware", "build", lambda real: raise_interrupt)),
    },
    "sweep": {
        "missing": ("sweep {d}/nope.toml", 2, "no such file"),
        "wrong type": ("sweep {d}/notes.txt", 1, "sweep config"),
        "wrong shape": ("sweep {d}/sweep_bad.toml --out {d}/sw", 1, "unknown keys ['bogus']"),
        "unwritable output": ("sweep {d}/sweep.toml --out {d}/afile/sw", 2, "is not a folder"),
        "existing output": ("sweep {d}/sweep.toml --out {d}/afile", 2,
                            "exists and is not a folder"),
        "interrupted": ("sweep {d}/sweep.toml --out {d}/never", 130, "stopped by Ctrl-C",
                        ("snnkit.cli.sweep", "sweep", lambda real: raise_interrupt)),
    },
    "demo": {
        "missing": (N_A, "demo reads no input"),
        "wrong type": ("demo --quick --out {d}/notes.txt", 2, "exists and is not a folder"),
        "wrong shape": (N_A, "demo reads no input"),
        "unwritable output": ("demo --quick --out {d}/afile/demo", 2, "is not a folder"),
        "existing output": ("demo --quick --out {d}/afile", 2, "exists and is not a folder"),
        "interrupted": ("demo --quick --out {d}/demo_int", 130, "stopped by Ctrl-C",
                        ("snnkit.demo", "part_conversion", lambda real: raise_interrupt)),
    },
}

ROWS = [(cmd, cat) for cmd in TABLE for cat in CATEGORIES if TABLE[cmd][cat][0] != N_A]


def test_the_table_covers_every_subcommand_and_category():
    _, commands = build_parser()
    missing = sorted(set(commands) - set(TABLE))
    assert not missing, f"add rows for {missing} to TABLE (a row or an explicit n/a each)"
    for cmd, rows in TABLE.items():
        assert set(rows) == set(CATEGORIES), cmd


@pytest.mark.parametrize("cmd,category", ROWS, ids=[f"{c}-{k}" for c, k in ROWS])
def test_bad_input_is_a_message_not_a_traceback(cmd, category, ws, board_url, capsys,
                                                monkeypatch):
    args, status, fragment, *patch = TABLE[cmd][category]
    port = (ws / "dead_port").read_text()
    argv = args.format(d=ws, port=port, board=board_url).split()
    if patch:
        where, attr, make = patch[0]
        obj = _resolve(where)
        monkeypatch.setattr(obj, attr, make(getattr(obj, attr)))
    rc = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert rc == status, err
    assert fragment in err, err
    if status == 2:
        assert f"snnkit {cmd}: error:" in err and "usage: snnkit" in err
    elif status == 1:
        assert f"snnkit {cmd}: error:" in err
    for name in ("o.npz", "c.snn", "t.snn", "out", "b", "never", "never.png", "never.snn"):
        assert not (ws / name).exists(), f"{name} written by a failed {cmd}"


def _resolve(path: str):
    """A module or a class by its dotted path."""
    import importlib

    try:
        return importlib.import_module(path)
    except ModuleNotFoundError:
        module, cls = path.rsplit(".", 1)
        return getattr(importlib.import_module(module), cls)


def test_an_interrupted_simulation_saves_its_finished_samples(ws):
    """The interrupted row above stopped after the first group (one sample): saved, marked."""
    part = Result.load(ws / "partial.npz")
    assert part.batch == 1 and part.metadata["interrupted"] is True
    assert part.metadata["samples_done"] == 1 and part.metadata["samples_asked"] == 3
    x = np.load(ws / "in.npz")["inputs"]
    ref = snnkit.simulate(snnkit.load(ws / "net.snn"), x[:, :1], backend="fixed")
    for k, s in ref.spikes.items():
        assert torch.equal(part.spikes[k], s), k
    board = Result.load(ws / "board_partial.npz")
    assert board.batch == 1 and board.backend == "device"
    ref = snnkit.simulate(snnkit.load(ws / "board.snn"), x[:, :1], backend="fixed")
    for k, s in ref.spikes.items():
        assert torch.equal(board.spikes[k], s), k
    summary = json.loads((ws / "demo_int" / "summary.json").read_text())
    assert summary["interrupted"] is True and "conversion" not in summary


def test_every_command_without_arguments_prints_its_usage(capsys):
    _, commands = build_parser()
    for cmd in commands:
        if cmd in ("demo", "emulate"):
            continue  # these run with their defaults (emulate: the board on port 5555)
        assert main([cmd]) == 2, cmd
        err = capsys.readouterr().err
        assert f"usage: snnkit {cmd}" in err and "Traceback" not in err


def test_debug_shows_the_traceback(ws, capsys):
    assert main(["info", str(ws / "notes.txt"), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "snnkit info: error:" in err
    assert main(["--debug", "info", str(ws / "notes.txt")]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_help_is_plain_text_with_its_defaults():
    _, commands = build_parser()
    for cmd, p in commands.items():
        text = p.format_help()
        assert "``" not in text, cmd
        for a in p._actions:
            if (a.option_strings and a.nargs != 0 and a.default not in (None, False, "")
                    and a.default is not argparse.SUPPRESS):
                assert f"{a.option_strings[-1]}" in text
                assert "default" in (a.help or "") or str(a.default) in text, (cmd, a.dest)
    assert "(default: float)" in " ".join(commands["simulate"].format_help().split())


# --------------------------------------------------------------------------- results


def test_a_simulate_result_reloads_whole_and_plots(ws, tmp_path, capsys):
    out = tmp_path / "res.txt"  # any name: written exactly as given
    assert main(["simulate", str(ws / "net.snn"), "--input", str(ws / "in.npy"), "--backend",
                 "fixed", "--record", " v, theta ,weights", "--steps", "15", "--out", str(out),
                 "--quiet"]) == 0
    assert out.exists() and not (tmp_path / "res.txt.npz").exists()
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    back = Result.load(out)
    ref = snnkit.simulate(snnkit.load(ws / "net.snn"), np.load(ws / "in.npy"), 15, "fixed",
                          record=("v", "theta", "weights"))
    assert (back.backend, back.steps, back.batch, back.lsb) == ("fixed", 15, 3, ref.lsb)
    for k in ref.spikes:
        assert torch.equal(back.spikes[k], ref.spikes[k])
    for pop, d in ref.states.items():
        for var, t in d.items():
            assert torch.equal(back.states[pop][var], t), (pop, var)
    assert torch.equal(back.weights["in->a"], ref.weights["in->a"])
    assert torch.equal(back.weight_trace["in->a"], ref.weight_trace["in->a"])
    assert back.metadata["backend"] == "fixed" and back.metadata["record"] == ["v", "theta",
                                                                             "weights"]
    assert torch.equal(back.real(back.states["a"]["v"]), ref.states["a"]["v"].double() * ref.lsb)
    assert main(["plot", str(out), "--raster", "--membrane", str(tmp_path / "v.svg"),
                 "--population", "b", "--weights", "--sample", "2"]) == 0
    for png in ("res_raster.png", "v.svg", "res_weights.png"):
        assert (tmp_path / png).stat().st_size > 1000, png
    size = back.states["b"]["v"].shape[-1]
    for neurons, pop, said in ((f"0,{size}", "b", f"[{size}] outside population 'b'"),
                               ("-1", "b", "[-1] outside"), (",", "b", "none given"),
                               ("0", "nope", "'nope' has no recorded membrane potential")):
        assert main(["plot", str(out), "--membrane", str(tmp_path / "w.png"), "--population",
                     pop, "--neurons", neurons]) == 2
        assert said in capsys.readouterr().err and not (tmp_path / "w.png").exists()


def test_a_run_result_reloads_and_plots(ws, tmp_path, board_url, capsys):
    out = tmp_path / "board.npz"
    assert main(["run", str(ws / "board.snn"), "--port", board_url.replace("socket://", ""),
                 "--input", str(ws / "in.npz"), "--steps", "12", "--out", str(out), "--plot",
                 str(tmp_path / "raster.png"), "--quiet"]) == 0
    back = Result.load(out)
    ref = snnkit.simulate(snnkit.load(ws / "board.snn"), np.load(ws / "in.npz")["inputs"][:12],
                          backend="fixed")
    assert (back.backend, back.steps, back.batch) == ("device", 12, 3)
    assert back.lsb == ref.lsb and back.metadata["command"] == "run"
    for k in ref.spikes:
        assert torch.equal(back.spikes[k], ref.spikes[k]), k
    assert (tmp_path / "raster.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(out)]) == 0 and (tmp_path / "board_raster.png").exists()


def test_on_chip_learning_over_groups_restarts_each_sample_from_the_loaded_weights(
        tmp_path, board_url, capsys):
    net = board_net(seed=3, stdp=True)
    net.save(tmp_path / "stdp.snn")
    x = np.random.default_rng(4).random((30, 4, 12)) < 0.3
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path / "stdp.snn"), "--port", board_url, "--input",
                 str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.npz")]) == 0
    back, ref = Result.load(tmp_path / "o.npz"), snnkit.simulate(net, x, backend="fixed")
    assert torch.equal(back.weights["in->a"], ref.weights["in->a"])
    for k in ref.spikes:
        assert torch.equal(back.spikes[k], ref.spikes[k]), k


def test_a_board_lost_mid_run_keeps_the_samples_it_finished(ws, tmp_path, board_url, capsys,
                                                           monkeypatch):
    from snnkit.device import Device

    real, calls = Device.run, []

    def lost_on_the_second_group(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise snnkit.DeviceError("port: read failed; the device is gone")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Device, "run", lost_on_the_second_group)
    out = tmp_path / "lost.npz"
    assert main(["run", str(ws / "board.snn"), "--port", board_url, "--input",
                 str(ws / "in.npz"), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr()
    assert "the board failed: saved the 1 finished of 3 samples" in err.out + err.err
    assert "the device is gone" in err.err
    back = Result.load(out)
    assert back.batch == 1 and back.metadata["samples_done"] == 1
    assert "the device is gone" in back.metadata["error"]


def test_result_api_names_what_is_missing(ws, tmp_path):
    res = Result.load(ws / "res.npz")
    with pytest.raises(snnkit.SimulationError, match=r"no population 'nope'.*populations"):
        res.counts("nope")
    with pytest.raises(snnkit.SimulationError, match=r"membrane: no population 'nope'"):
        snnkit.plot.membrane(res, tmp_path / "v.png", "nope")
    with pytest.raises(snnkit.SimulationError, match=r"no recorded 'v' for 'in'"):
        snnkit.plot.membrane(res, tmp_path / "v.png", "in")
    with pytest.raises(snnkit.SimulationError, match=r"\.txt: name an image file"):
        snnkit.plot.raster(res, tmp_path / "r.txt")
    with pytest.raises(FileNotFoundError, match="no such folder") as e:
        snnkit.plot.raster(res, tmp_path / "nodir" / "r.png")
    assert e.value.filename == str(tmp_path / "nodir")
    (tmp_path / "g.txt").write_text("garbage")
    with pytest.raises(snnkit.SimulationError, match="not a result file") as e:
        Result.load(tmp_path / "g.txt")
    assert "not a zip archive" in str(e.value) and "pickle" not in str(e.value)
    with pytest.raises(snnkit.SimulationError, match=r"raster: expected a snnkit Result.*dict"):
        snnkit.plot.raster({"a": 1}, tmp_path / "r.png")
    with pytest.raises(snnkit.SimulationError, match=r"weights: .* got a Result"):
        snnkit.plot.weights(res, tmp_path / "w.png")
    with pytest.raises(snnkit.SimulationError, match=r"weights: expected .* of numbers"):
        snnkit.plot.weights([["a", "b"]], tmp_path / "w.png")
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob(".*"))
    legacy = tmp_path / "old.npz"  # what snnkit 0.1 saved: no meta
    np.savez(legacy, **{"spikes/in": np.zeros((4, 2, 3), np.uint8)})
    old = Result.load(legacy)
    assert (old.backend, old.steps, old.batch, old.lsb) == ("unknown", 4, 2, None)


# --------------------------------------------------------------------------- inputs


def test_ports_are_written_three_ways():
    assert port_url("5555") == "socket://localhost:5555"
    assert port_url("localhost:5555") == "socket://localhost:5555"
    assert port_url("10.0.0.2:7") == "socket://10.0.0.2:7"
    for url in ("socket://127.0.0.1:5555", "/dev/ttyUSB0", "COM3", "/dev/pts/4"):
        assert port_url(url) == url
    assert socket_address("5555") == ("127.0.0.1", 5555)
    assert socket_address("socket://0.0.0.0:0") == ("0.0.0.0", 0)
    assert port_url("socket://h:7?logging=debug") == "socket://h:7?logging=debug"


@pytest.mark.parametrize("port, said", [("", "empty"), (" ", "empty"),
                                        ("socket://localhost", "expected socket://HOST:PORT"),
                                        (":5555", "a host before the colon"),
                                        ("socket://h:70000", "port 70000 is outside")])
def test_a_malformed_port_is_a_usage_error(ws, capsys, port, said):
    assert main(["deploy", str(ws / "board.snn"), "--port", port]) == 2
    assert "--port: " in capsys.readouterr().err
    with pytest.raises(snnkit.DeviceError, match=said):
        snnkit.Device(port)


def test_a_port_that_is_neither_a_name_nor_a_serial_port_is_named():
    with pytest.raises(snnkit.DeviceError, match="got list"):
        snnkit.Device([5555])


def test_nir_networks_need_dt_everywhere(ws, tmp_path, capsys):
    """Except a graph snnkit wrote: it carries its step (it asked for --dt, and read at
    another step every decay silently differed)."""
    import nir

    net = snnkit.load(ws / "board.snn")
    graph = snnkit.to_nir(net)
    nir.write(tmp_path / "own.nir", graph)
    assert main(["info", str(tmp_path / "own.nir")]) == 0
    assert f"dt={net.dt:g} s" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "own.nir"), "--dt", "1e-4"]) == 0
    assert f"snnkit exported it at dt={net.dt:g} s" in capsys.readouterr().err
    graph.metadata = {}  # as another tool writes it
    nir.write(tmp_path / "m.nir", graph)
    for argv in (["info", str(tmp_path / "m.nir")],
                 ["simulate", str(tmp_path / "m.nir"), "--input", str(ws / "in.npz"), "--out",
                  str(tmp_path / "o.npz")],
                 ["compile", str(tmp_path / "m.nir"), "-o", str(tmp_path / "c")]):
        assert main(argv) == 2
        assert "--dt: required for the NIR graph" in capsys.readouterr().err
        assert main(argv + ["--dt", "1e-3", "--quiet"]) == 0, argv
    assert Result.load(tmp_path / "o.npz").spikes["in"].shape == (20, 3, 12)
    assert main(["info", str(ws / "net.snn"), "--dt", "0.1"]) == 2
    assert "--dt: only for NIR graphs" in capsys.readouterr().err
    # snntorch's exporter fixes the step: --convention snntorch needs no --dt
    assert main(["info", str(tmp_path / "m.nir"), "--convention", "snntorch", "--quiet"]) == 0
    assert "dt=0.0001 s" in capsys.readouterr().out


def test_steps_shorter_than_the_input_run_its_first_steps(ws, tmp_path):
    net, x = snnkit.load(ws / "net.snn"), np.load(ws / "in.npy")
    short = snnkit.simulate(net, x, 7, backend="fixed")
    ref = snnkit.simulate(net, x[:7], backend="fixed")
    for k in ref.spikes:
        assert torch.equal(short.spikes[k], ref.spikes[k])
    with pytest.raises(snnkit.SimulationError, match="inputs cover 20 steps but steps=21"):
        snnkit.simulate(net, x, 21)


def test_record_names_are_checked_against_the_network(ws, tmp_path, capsys):
    argv = ["simulate", str(ws / "board.snn"), "--input", str(ws / "in.npz"), "--out",
            str(tmp_path / "o.npz")]
    assert main(argv + ["--record", "weights"]) == 2
    assert "no projection of this network has STDP" in capsys.readouterr().err
    assert main(argv + ["--record", "v,volts"]) == 2
    assert "--record: unknown 'volts'" in capsys.readouterr().err


def test_simulate_no_learning_keeps_the_weights_and_equals_the_api(ws, tmp_path, capsys):
    """`snnkit run` could switch STDP off on a board, `simulate` could not: the same run in
    the simulators had to go through Python."""
    argv = ["simulate", str(ws / "net.snn"), "--input", str(ws / "in.npz"), "--backend",
            "fixed", "--quiet"]
    assert main(argv + ["--out", str(tmp_path / "on.npz")]) == 0
    assert main(argv + ["--out", str(tmp_path / "off.npz"), "--no-learning"]) == 0
    net, x = snnkit.load(ws / "net.snn"), np.load(ws / "in.npy")
    on, off = (snnkit.Result.load(tmp_path / f) for f in ("on.npz", "off.npz"))
    ref = snnkit.simulate(net, x, backend="fixed", learning=False)
    changed = 0
    for name, w in ref.weights.items():
        assert torch.equal(off.weights[name], w)
        changed += int((on.weights[name] != w).sum())
    assert changed, "STDP changed no weight with learning on: the check is void"
    for k in ref.spikes:
        assert torch.equal(off.spikes[k], ref.spikes[k])
    assert main(argv + ["--out", str(tmp_path / "x.npz"), "--no-learning", "--record",
                        "weights"]) == 2
    assert "with --no-learning the weights do not change" in capsys.readouterr().err
    assert main(["simulate", str(ws / "board.snn"), "--input", str(ws / "in.npz"), "--out",
                 str(tmp_path / "y.npz"), "--no-learning"]) == 2
    assert "--no-learning: no projection of this network has STDP" in capsys.readouterr().err


def test_an_unknown_option_is_named_with_its_command(ws, tmp_path, capsys):
    """It read 'snnkit: error: unrecognized arguments', with the top-level usage."""
    assert main(["info", str(ws / "net.snn"), "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "snnkit info: error: unrecognized arguments: --bogus" in err
    assert "usage: snnkit info" in err


# --------------------------------------------------------------------------- defaults


def _umask():
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_files_get_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        make_net().save(tmp_path / "n.snn")
        assert (tmp_path / "n.snn").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_poisson_draws_fresh_spikes_unless_seeded():
    a = snnkit.encoders.poisson(np.full((2, 500), 0.3), 20)
    b = snnkit.encoders.poisson(np.full((2, 500), 0.3), 20)
    assert not torch.equal(a, b)
    assert torch.equal(snnkit.encoders.poisson(np.full((2, 500), 0.3), 20, seed=4),
                       snnkit.encoders.poisson(np.full((2, 500), 0.3), 20, seed=4))


def test_stdp_bounds_that_would_clip_initial_weights_warn(recwarn):
    net = snnkit.Network()
    net.add_input("in", 4)
    net.add_population("out", 2)
    net.connect("in", "out", [[-0.5, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 1.5]],
                stdp=snnkit.STDP())
    w = [x for x in recwarn if issubclass(x.category, snnkit.STDPBoundsWarning)]
    assert len(w) == 1 and "2 of 8 plastic weights lie outside [w_min, w_max] = [0, 1]" in str(
        w[0].message)
    net.connect("in", "out", 0.5, stdp=snnkit.STDP(), delay=1)  # inside: silent
    assert len([x for x in recwarn if issubclass(x.category, snnkit.STDPBoundsWarning)]) == 1


def test_compile_says_which_boards_fit(ws, tmp_path, capsys):
    assert main(["compile", str(ws / "net.snn"), "-o", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "fits: ice40" in out and "PR_MAX 8 > 4" in out  # 5 projections: a larger table
    big = snnkit.Network()
    big.add_input("in", 100)
    big.add_population("h", 1000)
    big.connect("in", "h", 0.01)
    big.save(tmp_path / "big.snn")
    assert main(["compile", str(tmp_path / "big.snn"), "-o", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    assert "snnkit compile: warning: this network is larger than every board" in err
    assert "N_MAX 2,048 > 256" in err and "Traceback" not in err


def test_train_runs_with_its_defaults(ws, tmp_path, capsys, monkeypatch):
    """No --steps: samples [N, inputs] train at the documented default T (it used to stop at
    'steps: must be a positive integer, got None')."""
    net = snnkit.Network()
    net.add_input("in", 12)
    net.add_population("out", 3, snnkit.LIF(beta=0.9))
    net.connect("in", "out", np.random.default_rng(0).normal(0.2, 0.1, (3, 12)))
    net.save(tmp_path / "n.snn")
    out = tmp_path / "t.snn"
    seen = {}
    cli_train = importlib.import_module("snnkit.cli.train")
    real = cli_train.fit
    monkeypatch.setattr(cli_train, "fit",
                        lambda *a, **k: seen.update(k) or real(*a, **k))
    assert main(["train", str(tmp_path / "n.snn"), "--data", str(ws / "train.npz"),
                 "-o", str(out), "--epochs", "1", "--quiet"]) == 0
    assert "trained 1 epochs" in capsys.readouterr().out
    assert seen["steps"] == 8
    assert snnkit.load(out).population("out").size == 3


def test_nir_commands_warn_only_of_approximations(tmp_path, capsys):
    """An snntorch-style graph imports with exact reinterpretations only (threshold step,
    folded bias and gain): every command used to print them as a warning. Now only
    approximated entries warn; `info` still lists every one."""
    import nir

    rng = np.random.default_rng(0)
    graph = nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([4])),
        nir.Affine(weight=rng.normal(size=(3, 4)), bias=rng.normal(size=3)),
        nir.LIF(tau=np.full(3, 0.01), r=np.full(3, 2.0), v_leak=np.zeros(3),
                v_threshold=np.ones(3), v_reset=np.zeros(3)),
        nir.Output(output_type=np.array([3])))
    nir.write(tmp_path / "g.nir", graph)
    np.save(tmp_path / "x.npy", rng.random((5, 2, 4)) < 0.5)
    sim = ["simulate", str(tmp_path / "g.nir"), "--input", str(tmp_path / "x.npy"), "--out",
           str(tmp_path / "o.npz"), "--quiet"]
    for conv, warned in (("nir", False), ("sinabs", True)):
        assert main(sim + ["--dt", "1e-3", "--convention", conv]) == 0
        err = capsys.readouterr().err
        assert ("warning: NIR import" in err) == warned, (conv, err)
        assert "(exact)" not in err
    assert main(["info", str(tmp_path / "g.nir"), "--dt", "1e-3"]) == 0
    assert "v_threshold (exact)" in capsys.readouterr().out


def test_convert_prints_the_test_accuracy(ws, tmp_path, capsys):
    """`convert` used to end at 'wrote NET' with no word on how good the conversion is; with
    --test (default for examples: the digits test set) it prints the ANN's accuracy and the
    converted network's in float and fixed point."""
    rng = np.random.default_rng(3)
    x = rng.random((12, 4))
    model = torch.jit.load(ws / "model.pt")
    y = model(torch.as_tensor(x, dtype=torch.float32)).argmax(-1).numpy()
    np.savez(tmp_path / "test.npz", x=x, y=y)  # labels = the ANN's: its accuracy is 100%
    argv = ["convert", str(ws / "model.pt"), "--calib", str(ws / "calib.npy"), "-o",
            str(tmp_path / "c.snn"), "--quiet"]
    assert main(argv + ["--test", str(tmp_path / "test.npz")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("test accuracy on 12 samples: ANN 100.00%; converted, T=32: float")
    assert main(argv + ["--test", str(ws / "calib.npy")]) == 2
    assert "--test: " in capsys.readouterr().err


def test_version(capsys):
    """`snnkit --version` was an unknown option."""
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"snnkit {snnkit.__version__}"


def test_a_port_nobody_listens_on_says_what_to_start(ws, capsys):
    """deploy to a TCP port with no emulated board behind it used to end at 'Connection
    refused'; it now names the command that serves one."""
    port = (ws / "dead_port").read_text()
    assert main(["deploy", str(ws / "board.snn"), "--port", port, "--quiet"]) == 1
    assert f"start the emulated board (snnkit emulate --port {port}" in capsys.readouterr().err


class FakeBoardProcess:
    """The emulated board's process as ``snnkit emulate`` sees it: it serves until Ctrl-C
    (``wait`` raises it), or ends by itself with ``status``; the signals it got."""

    def __init__(self, status=None):
        self.status, self.signals, self.stdout = status, [], io.StringIO()

    def wait(self, timeout=None):
        if self.status is None and not self.signals:
            raise KeyboardInterrupt
        return self.status or 0

    def send_signal(self, sig):
        self.signals.append(sig)

    def poll(self):
        return self.wait() if self.signals or self.status is not None else None

    def kill(self):
        self.signals.append(signal.SIGKILL)


@pytest.fixture
def fake_board(monkeypatch):
    """``snnkit emulate`` without Verilator: no build, a stand-in board process. Yields what
    the board was started with (port, pty, host), the process, and ``status`` to set for
    one that ends by itself."""
    eb = importlib.import_module("snnkit.emulated_board")
    started = {"status": None}

    def launch(exe, port, pty, host):
        started.update(port=port, pty=pty, host=host,
                       board=FakeBoardProcess(started["status"]))
        return started["board"], "/dev/pts/9" if pty else f"socket://{host}:{port}"

    monkeypatch.setattr(eb, "build", lambda *a, **k: Path("Vhost_top"))
    monkeypatch.setattr(eb, "_launch", launch)
    monkeypatch.setattr(importlib.import_module("snnkit.cli.board"), "_check_free",
                        lambda host, port: None)  # 5555 may be taken
    return started


def test_emulate_serves_on_5555_by_default(fake_board, capsys):
    """`snnkit emulate` with neither --port nor --pty used to stop at a usage error; it serves
    the standard board on localhost:5555, the port the docs' examples use."""
    assert main(["emulate"]) == 130  # served until Ctrl-C
    assert (fake_board["host"], fake_board["port"], fake_board["pty"]) == ("127.0.0.1", 5555,
                                                                           False)
    assert "emulated board on socket://127.0.0.1:5555" in capsys.readouterr().out
    assert main(["emulate", "--pty"]) == 130
    assert fake_board["pty"] is True


def test_emulate_stopped_by_ctrl_c_exits_130(fake_board, capsys):
    """`snnkit emulate` stopped by Ctrl-C while serving exited 0 (130 during its build), as
    if it had finished; it exits 130 and stops the board process. A board that stops by
    itself is an error, not a success."""
    assert main(["emulate", "--port", "0"]) == 130
    assert "snnkit emulate: stopped by Ctrl-C" in capsys.readouterr().err
    assert fake_board["board"].signals == [signal.SIGINT]
    fake_board["status"] = -9
    assert main(["emulate", "--port", "0"]) == 1
    assert "the emulated board stopped by itself (status -9)" in capsys.readouterr().err


def test_simulate_and_run_take_samples_as_train_does(tmp_path, capsys):
    """`snnkit train` takes samples [N, inputs] and encodes them; simulate and run refused the
    same samples ("expected shape [steps, batch, 64]"), so a network trained on the command
    line could not be run on its own data there. Samples are encoded as train does (regular
    spikes, 8 steps by default), on the simulator and on the emulated board alike."""
    net = board_net(seed=5)
    net.save(tmp_path / "n.snn")
    samples = np.random.default_rng(3).random((4, net.n_inputs))
    np.save(tmp_path / "s.npy", samples)
    assert main(["simulate", str(tmp_path / "n.snn"), "--input", str(tmp_path / "s.npy"),
                 "--backend", "fixed", "--out", str(tmp_path / "a.npz"), "--quiet"]) == 0
    assert "4 samples encoded as regular inputs over 8 steps" in capsys.readouterr().out
    want = snnkit.simulate(net, snnkit.encoders.regular(samples, 8), backend="fixed")
    got = Result.load(tmp_path / "a.npz")
    assert got.steps == 8 and sum(int(s.sum()) for s in want.spikes.values()) > 0
    for name, s in want.spikes.items():
        assert torch.equal(got.spikes[name], s), name
    with running(config=CONFIG) as (url, _):  # the board, the same samples, --steps
        assert main(["run", str(tmp_path / "n.snn"), "--port", url, "--input",
                     str(tmp_path / "s.npy"), "--steps", "5", "--encoding", "poisson",
                     "--out", str(tmp_path / "b.npz"), "--quiet"]) == 0
    board = Result.load(tmp_path / "b.npz")
    ref = snnkit.simulate(net, snnkit.encoders.poisson(samples, 5, seed=0), backend="fixed")
    for name, s in ref.spikes.items():
        assert torch.equal(board.spikes[name], s), name
    np.save(tmp_path / "big.npy", samples * 3)
    assert main(["simulate", str(tmp_path / "n.snn"), "--input", str(tmp_path / "big.npy"),
                 "--out", str(tmp_path / "c.npz")]) == 2
    assert "samples must be spike rates in [0, 1], got [0" in capsys.readouterr().err
    np.save(tmp_path / "t.npy", snnkit.encoders.regular(samples, 3).numpy())
    assert main(["simulate", str(tmp_path / "n.snn"), "--input", str(tmp_path / "t.npy"),
                 "--encoding", "regular", "--out", str(tmp_path / "d.npz")]) == 2
    assert "--encoding: only for samples [batch, inputs]" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "n.snn"), "--input", str(tmp_path / "t.npy"),
                 "--steps", "4", "--out", str(tmp_path / "d.npz")]) == 2
    assert "--steps: 4 is more than the 3 steps the input holds" in capsys.readouterr().err
    np.save(tmp_path / "wide.npy", np.zeros((2, net.n_inputs + 1)))
    assert main(["simulate", str(tmp_path / "n.snn"), "--input", str(tmp_path / "wide.npy"),
                 "--out", str(tmp_path / "e.npz")]) == 2
    assert (f"the network's input {net.inputs[0].name!r} takes [batch, {net.n_inputs}]"
            in capsys.readouterr().err)
    assert not (tmp_path / "c.npz").exists() and not (tmp_path / "d.npz").exists()


def test_a_cnn_takes_image_samples_on_simulate_and_train(tmp_path, capsys):
    """A CNN's data are images [N, C, H, W]; simulate and train refused them ("expected shape
    [steps, batch, 36]") though the input population is shaped [C, H, W]. They run as the
    same samples flattened channel-major."""
    rng = np.random.default_rng(0)
    net = snnkit.Network(dt=1e-3)
    net.add_input("img", (1, 6, 6))
    net.add_population("c", (2, 6, 6), snnkit.IF(threshold=0.5))
    net.add_population("out", 3, snnkit.IF(threshold=0.5))
    net.connect_conv("img", "c", rng.normal(0.4, 0.2, (2, 1, 3, 3)), padding=1)
    net.connect("c", "out", rng.normal(0.1, 0.1, (3, 72)))
    net.save(tmp_path / "cnn.snn")
    images = rng.random((5, 1, 6, 6))
    np.save(tmp_path / "img.npy", images)
    assert main(["simulate", str(tmp_path / "cnn.snn"), "--input", str(tmp_path / "img.npy"),
                 "--out", str(tmp_path / "a.npz"), "--quiet"]) == 0
    want = snnkit.simulate(net, snnkit.encoders.regular(images.reshape(5, -1), 8))
    got = Result.load(tmp_path / "a.npz")
    assert int(want.spikes["c"].sum()) > 0
    for name, s in want.spikes.items():
        assert torch.equal(got.spikes[name], s), name
    np.savez(tmp_path / "d.npz", x_train=images, y_train=np.arange(5) % 3)
    assert main(["train", str(tmp_path / "cnn.snn"), "--data", str(tmp_path / "d.npz"),
                 "--epochs", "1", "-o", str(tmp_path / "t.snn"), "--quiet"]) == 0
    assert "trained 1 epochs" in capsys.readouterr().out


def test_samples_for_a_converted_network_are_fed_as_its_conversion_says(tmp_path, capsys):
    """`snnkit simulate mlp.snn --input samples.npy` encoded the samples as train does (8
    regular steps) though NET.conversion.json beside it says how the network is fed (its
    steps; lossless: a burst): a silently wrong run (a lossless MLP fell to chance)."""
    torch.manual_seed(0)  # an init whose outputs are all negative would never spike
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(1, 6),)), tmp_path / "m.pt2")
    x = np.random.default_rng(0).random((4, 6))
    np.save(tmp_path / "x.npy", x)
    assert main(["convert", str(tmp_path / "m.pt2"), "--calib", str(tmp_path / "x.npy"),
                 "--steps", "20", "-o", str(tmp_path / "m.snn")]) == 0
    assert main(["simulate", str(tmp_path / "m.snn"), "--input", str(tmp_path / "x.npy"),
                 "--out", str(tmp_path / "r.npz"), "--quiet"]) == 0
    assert "m.snn.conversion.json says (rate conversion, spikes input) over 20 steps" in \
        capsys.readouterr().out
    want = snnkit.simulate(snnkit.load(tmp_path / "m.snn"), snnkit.encoders.regular(x, 20))
    got = Result.load(tmp_path / "r.npz")
    assert got.steps == 20 and int(want.spikes["output"].sum()) > 0
    for name, s in want.spikes.items():
        assert torch.equal(got.spikes[name], s), name


def test_an_exported_model_with_a_layer_no_route_converts_says_what_to_use(tmp_path, capsys):
    """A .pt2 with MaxPool2d said "give the state dict and the model's class instead", a
    route that then fails on the same layer: it says what to use instead."""
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(8, 3))
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(1, 1, 4, 4),)),
                      tmp_path / "m.pt2")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((4, 1, 4, 4)))
    assert main(["convert", str(tmp_path / "m.pt2"), "--calib", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "m.snn")]) == 1
    err = capsys.readouterr().err
    assert "max_pool2d.default (layer 2) is not supported for conversion; use AvgPool2d" in err
    assert "state dict" not in err and not (tmp_path / "m.snn").exists()


def test_a_closed_pipe_on_stdout_ends_quietly(ws):
    """`snnkit info net.snn | head -1` printed "snnkit info: error: Broken pipe" once head
    left; a closed stdout now ends quietly with 141, as cat does."""
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)  # the reader has gone before snnkit writes
    try:
        p = subprocess.run([sys.executable, "-m", "snnkit", "info", str(ws / "net.snn")],
                           stdout=w, stderr=subprocess.PIPE, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    finally:
        os.close(w)
    assert p.returncode == 141 and p.stderr == "", p.stderr


def test_a_command_that_writes_files_finishes_them_when_stdout_closes(ws, tmp_path):
    """`snnkit run ... | head` ended at the first report line once head left, saving
    nothing; the report now goes nowhere and the result is written (`info` still ends)."""
    import subprocess
    import sys

    r, w = os.pipe()
    os.close(r)
    out = tmp_path / "o.npz"
    try:
        p = subprocess.run([sys.executable, "-m", "snnkit", "simulate", str(ws / "net.snn"),
                            "--input", str(ws / "in.npz"), "--out", str(out), "--quiet"],
                           stdout=w, stderr=subprocess.PIPE, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    finally:
        os.close(w)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert snnkit.Result.load(out).spikes


def test_a_csv_input_is_named_as_text_not_as_pickled_data(ws, tmp_path, capsys):
    """A .csv given as --input was refused with numpy's "contains pickled (object) data ...
    allow_pickle" text, which points the user at unpickling; it is named as text now."""
    (tmp_path / "x.csv").write_text("0,1,0\n1,0,1\n")
    assert main(["simulate", str(ws / "net.snn"), "--input", str(tmp_path / "x.csv"),
                 "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert "is not a numpy .npz or .npy file (text such as .csv" in err and "pickle" not in err


def test_a_torch_model_given_as_the_network_says_convert_it_first(tmp_path, capsys):
    """`snnkit simulate model.pt2 ...` said "not a snnkit network file (no manifest.json)"
    (exit 1); it is a usage mistake with a known next step: snnkit convert."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(1, 4),)), tmp_path / "m.pt2")
    np.save(tmp_path / "x.npy", np.zeros((2, 4)))
    assert main(["info", str(tmp_path / "m.pt2")]) == 2
    assert "is a torch model, not a network: convert it first (snnkit convert" in \
        capsys.readouterr().err


def test_deploy_and_run_default_to_the_emulated_boards_port():
    """`snnkit emulate` serves on 5555 by default and the guide says `--port` defaults to
    5555, but deploy and run required --port ("the following arguments are required")."""
    ap, _ = build_parser()
    for cmd in (["deploy", "n.snn"], ["run", "n.snn", "--input", "x.npy", "--out", "o.npz"]):
        args = ap.parse_args(cmd)
        assert port_url(args.port) == port_url("5555") == "socket://localhost:5555", cmd


def test_emulate_on_a_port_in_use_says_so(capsys):
    """A second `snnkit emulate` (both on the default 5555) built the board, then ended with
    the emulator's "bind: Address already in use" and "did not start: no output"."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["emulate", "--port", str(port)]) == 2
    assert f"--port: 127.0.0.1:{port} is in use (another snnkit emulate" in \
        capsys.readouterr().err


def test_emulate_serves_only_on_an_address_of_this_machine(capsys):
    """A host the emulator could not parse (a name, IPv6) was served on every interface
    (0.0.0.0) while the command announced it; a foreign address ended in "did not start"."""
    for port, says in (("socket://[::1]:5579", "the emulated board serves IPv4 only, got '::1'"),
                       ("socket://nosuchhost.invalid:5578",
                        "no IPv4 address for host 'nosuchhost.invalid'"),
                       ("socket://192.0.2.1:5577",
                        "cannot serve on 192.0.2.1:5577 (Cannot assign requested address")):
        assert main(["emulate", "--port", port]) == 2, port
        assert f"--port: {says}" in capsys.readouterr().err, port


def test_current_encoding_on_a_spike_input_names_the_option(ws, tmp_path, capsys):
    """`--encoding current` on a spike input ended in the simulator's "spike inputs must be
    0 or 1 ... (use an encoder from snnkit.encoders)", which names no option to change."""
    net = snnkit.load(ws / "net.snn")
    np.save(tmp_path / "s.npy", np.full((2, net.n_inputs), 0.5))
    assert main(["simulate", str(ws / "net.snn"), "--input", str(tmp_path / "s.npy"),
                 "--encoding", "current", "--out", str(tmp_path / "o.npz")]) == 2
    assert "--encoding current: the input population" in capsys.readouterr().err


def test_a_result_named_as_a_picture_or_network_is_refused(ws, tmp_path, capsys):
    """`--out x.png` (meaning --plot) wrote the .npz archive under that name, and `--out
    net.snn` overwrote the network with a result; both are refused before any work."""
    for name, what in (("x.png", "a picture: --plot draws one"), ("net.snn", "a network file")):
        assert main(["simulate", str(ws / "net.snn"), "--input", str(ws / "in.npz"),
                     "--out", str(tmp_path / name)]) == 2, name
        assert f"names {what}; the result is an .npz archive" in capsys.readouterr().err
        assert not (tmp_path / name).exists()


def test_samples_for_a_trained_network_run_as_it_was_trained(tmp_path, capsys):
    """`snnkit train --steps 12 -o t.snn` then `snnkit simulate t.snn --input samples.npy`
    ran 8 steps (the default), not the 12 the network was trained on, silently."""
    net = board_net(seed=5)
    net.save(tmp_path / "n.snn")
    rng = np.random.default_rng(1)
    x = rng.random((6, net.n_inputs))
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.arange(6) % net.populations[-1].size)
    np.save(tmp_path / "s.npy", x[:3])
    assert main(["train", str(tmp_path / "n.snn"), "--data", str(tmp_path / "d.npz"),
                 "--epochs", "1", "--steps", "12", "-o", str(tmp_path / "t.snn"),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["simulate", str(tmp_path / "t.snn"), "--input", str(tmp_path / "s.npy"),
                 "--out", str(tmp_path / "r.npz"), "--quiet"]) == 0
    assert "over 12 steps (as it was trained" in capsys.readouterr().out
    assert Result.load(tmp_path / "r.npz").steps == 12
