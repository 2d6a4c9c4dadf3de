"""benchmarks/conv_workload.py small: the convolutional workload as snntorch and sinabs build
it, imported from their own NIR exports, runs on the fused convolution kernel to the peers'
very spikes, and its fixed-point run equals the torch path's integers. The full-size run and
its timing are sim_speed.py --workloads conv's."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

import snnkit
import snnkit.conv as cv

_PATH = Path(__file__).parents[1] / "benchmarks" / "conv_workload.py"
_spec = importlib.util.spec_from_file_location("conv_workload", _PATH)
conv_workload = importlib.util.module_from_spec(_spec)
sys.modules["conv_workload"] = conv_workload
_spec.loader.exec_module(conv_workload)


def _fused_spy(monkeypatch) -> list:
    taken, real = [], cv.fused_layer

    def spy(*a, **k):
        out = real(*a, **k)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(cv, "fused_layer", spy)
    return taken


@pytest.mark.parametrize("peer", ["snntorch", "sinabs"])
def test_conv_workload_spikes_are_the_peers(peer, monkeypatch):
    pytest.importorskip(peer)
    make = conv_workload.conv_snntorch if peer == "snntorch" else conv_workload.conv_sinabs
    w = make(steps=12, batch=2)
    taken = _fused_spy(monkeypatch)
    got = snnkit.Simulator(w["net"], device="cpu").run(w["x"])
    assert taken == [True, True], "the convolutions did not run fused: test void"
    for name, ref in w["run_peer"]().items():
        assert ref.any(), f"{name} silent: test void"
        assert torch.equal(got.spikes[name], ref), name


def test_conv_workload_fixed_point_equals_the_torch_path(monkeypatch):
    pytest.importorskip("snntorch")
    w = conv_workload.conv_snntorch(steps=12, batch=2)
    q, _ = snnkit.quantize(w["net"])
    taken = _fused_spy(monkeypatch)
    fast = snnkit.simulate(q, w["x"], backend="fixed", device="cpu", record="v")
    assert taken == [True, True]
    monkeypatch.setenv("SNNKIT_KERNELS", "0")
    slow = snnkit.simulate(q, w["x"], backend="fixed", device="cpu", record="v")
    for name in fast.spikes:
        assert torch.equal(fast.spikes[name], slow.spikes[name]), name
    for name in fast.states:
        assert torch.equal(fast.states[name]["v"], slow.states[name]["v"]), name
