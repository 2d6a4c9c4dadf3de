"""snnkit.Cluster: one partitioned network over two emulated boards (Verilated host_top on
sockets, the real pyserial driver), spikes routed by the host each step; spikes and on-chip
STDP weights equal the fixed-point simulator's, including STDP on projections that cross
boards with delay 0 (same step, a later wave) and delay 1 (through the step barrier)."""

import numpy as np
import pytest
import torch

import snnkit
from snnkit.cluster import Cluster
from snnkit.compiler import HardwareConfig
from snnkit.emulated_board import running
from snnkit.quantize import integer_weights

CONFIG = HardwareConfig(n_max=64, syn_max=1024, p_max=8, pr_max=16, d_max=3, tr_max=256)


def crossing_net(seed=0):
    """in -> h (STDP), h -> h recurrent (delay 1, STDP), h -> out (delay 0, STDP)."""
    rng = np.random.default_rng(seed)
    net = snnkit.Network(name="crossing")
    net.add_input("in", 8)
    net.add_population("h", 12, snnkit.CubaLIF(alpha=0.5, beta=0.8, threshold=1.0))
    net.add_population("out", 4, snnkit.LIF(beta=0.9, threshold=1.2, refractory=1))
    stdp = dict(a_plus=0.05, a_minus=0.04, w_min=-1.0, w_max=1.0)
    net.connect("in", "h", rng.normal(0.45, 0.3, (12, 8)), stdp=snnkit.STDP(**stdp))
    net.connect("h", "h", rng.normal(0.0, 0.4, (12, 12)), delay=1,
                mask=rng.random((12, 12)) < 0.5, stdp=snnkit.STDP(**stdp, rule="nearest"))
    net.connect("h", "out", rng.normal(0.4, 0.3, (4, 12)),
                stdp=snnkit.STDP(**stdp, bounds="soft"))
    return snnkit.quantize(net)[0]


@pytest.fixture(scope="module")
def boards():
    with running(CONFIG) as (a, _), running(CONFIG) as (b, _):
        yield [a, b]


def test_cluster_of_two_emulated_boards_equals_the_simulator(boards):
    net = crossing_net()
    x = np.random.default_rng(1).random((40, 2, 8)) < 0.35
    ref = snnkit.simulate(net, x, backend="fixed")
    with Cluster(boards) as cluster:
        part = cluster.load(net, allocator="in_order")  # h split; out on board 1
        res = cluster.run(x)
        link = cluster.link
        again = cluster.run(x[:, :1])  # sample 0 from the load's weights, not the learned
    assert {net.projections[j].name for j in part.crossings} == {"h->h", "h->out"}
    assert part.waves == [[0], [1]]
    for name in ref.spikes:
        assert torch.equal(res.spikes[name], ref.spikes[name]), name
        assert torch.equal(again.spikes[name], ref.spikes[name][:, :1]), name
    assert set(res.weights) == {"in->h", "h->h", "h->out"}
    for j, pr in enumerate(net.projections):
        assert torch.equal(res.weights[pr.name], ref.weights[pr.name]), pr.name
        w0 = torch.from_numpy(integer_weights(net, j, net.quantization))
        assert not torch.equal(ref.weights[pr.name][0], w0), pr.name  # it did learn
    assert ref.spikes["out"].sum() > 5
    # link use: every step is one RUN frame per board each way, 7 bytes of framing each
    assert link.steps == 80 and link.routed > 0
    assert link.bytes_per_step >= 2 * 2 * (7 + 4)


def test_cluster_without_a_network_or_with_too_few_boards(boards):
    with Cluster(boards[:1]) as cluster:
        with pytest.raises(snnkit.DeviceError, match="no network loaded"):
            cluster.run(np.zeros((2, 1, 8)))
        part = snnkit.partition(crossing_net(), 2, CONFIG, allocator="in_order")
        with pytest.raises(snnkit.DeviceError, match="2 cores but there are 1 boards"):
            cluster.load(part)
