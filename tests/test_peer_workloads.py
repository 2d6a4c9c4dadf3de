"""benchmarks/sim_speed.py's workloads, small: each as its peer builds it, exported by the peer
to NIR (Diehl & Cook: the same network in snnkit's API), runs to the peer's very spikes (and,
with STDP, learned weights), and the fixed-point kernel to the torch path's integers. The
full-size runs and their timing are the benchmark's."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

import snnkit

_PATH = Path(__file__).parents[1] / "benchmarks" / "sim_speed.py"
_spec = importlib.util.spec_from_file_location("sim_speed", _PATH)
sim_speed = importlib.util.module_from_spec(_spec)
sys.modules["sim_speed"] = sim_speed
_spec.loader.exec_module(sim_speed)

SMALL = {"ff": dict(n_in=60, n_hid=50, n_out=8, steps=40, batch=4, rate=0.2),
         "ff_norse": dict(n_in=60, n_hid=50, n_out=8, steps=40, batch=4, rate=0.2),
         "rleaky": dict(n_in=60, n_hid=50, n_out=8, steps=40, batch=4, rate=0.2),
         "diehl_cook": dict(n_in=80, n_exc=30, steps=150, batch=2, rate=0.1)}


def test_every_workload_has_a_small_version():
    assert set(SMALL) == set(sim_speed.WORKLOADS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_workload_spikes_are_the_peers(name):
    w = sim_speed.WORKLOADS[name](**SMALL[name])
    res = sim_speed.check_same_as_peer(w)  # raises naming what differs
    assert res.flips == 0  # small: even norse's other float formula gives the same spikes
    if name in ("ff", "rleaky"):  # imported with snntorch's delayed reset as the option
        assert all(p.neuron.reset == "delayed" for p in w.net.neuron_populations)
        assert all(p.mask is None for p in w.net.projections)  # no self projection added
    qnet, _ = snnkit.quantize(w.net)
    sim = snnkit.Simulator(qnet, "fixed", device="cpu")
    fast = sim_speed._snnkit(sim, w.x)()
    slow = sim_speed._snnkit(sim, w.x, kernel=False)()
    for k in fast.spikes:
        assert torch.equal(fast.spikes[k], slow.spikes[k]), k
    assert sim_speed.synaptic_events(w.net, res) > 0
