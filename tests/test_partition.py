"""snnkit.partition: allocators, per-core limits, the step schedule, and the partitioned
network computing exactly what the whole network computes (each core run by the fixed-point
simulator on the inputs its router and host deliver)."""

import re

import numpy as np
import pytest
import torch

import snnkit
from snnkit.allocators import Allocator, InOrder, Metis, NeuronGraph
from snnkit.compiler import HardwareConfig

from .conftest import make_net

# room for the split populations of make_net's per-neuron thresholds (snnkit.lowering)
SMALL = HardwareConfig(n_max=32, p_max=16, pr_max=32)


def interleaved_cliques(n=16):
    """Two all-to-all groups whose neurons alternate in index order (even / odd), joined by
    one synapse each way: the best 2-core cut is 2 synapses, in-order fill cuts half of
    every clique."""
    net = snnkit.Network(name="cliques")
    net.add_input("in", 2)
    net.add_population("p", n, snnkit.LIF(beta=0.9, threshold=1.0))
    even = np.arange(n) % 2 == 0
    mask = (even[:, None] == even[None, :]) & ~np.eye(n, dtype=bool)
    mask[1, 0] = mask[0, 1] = True  # the two bridges (neuron 0 is even, 1 odd)
    net.connect("p", "p", 0.2, mask=mask, delay=1)
    net.connect("in", "p", 0.6)
    return snnkit.quantize(net)[0], mask


def test_metis_finds_the_cut_of_a_hand_made_case_and_in_order_does_not():
    net, mask = interleaved_cliques()
    g = NeuronGraph.of(net)
    assert g.n == 16 and g.src.size == mask.sum()
    metis = snnkit.partition(net, 2, SMALL, allocator="metis")
    fill = snnkit.partition(net, 2, SMALL, allocator="in_order")
    assert metis.cross_synapses == 2  # only the bridges
    # in order: cores {0..7} and {8..15}; each clique has 4 members in each half, so
    # 2 cliques x 4 x 4 x 2 directions cross, plus the bridges (both on core 0)
    assert fill.cross_synapses == 64
    even = np.arange(16) % 2 == 0
    assert len(set(metis.placement["p"][even])) == 1 and len(set(metis.placement["p"][~even])) == 1


def test_allocators_are_interchangeable_and_balanced():
    net = snnkit.quantize(make_net(0, stdp=True))[0]
    g = NeuronGraph.of(net)
    for alloc in (InOrder(), Metis(seed=1), "metis", "in_order"):
        part = snnkit.partition(net, 3, SMALL, allocator=alloc)
        counts = np.bincount(np.concatenate(list(part.placement.values())), minlength=3)
        assert counts.sum() == g.n and counts.max() - counts.min() <= 1 + g.n // 10
        # the report names every crossing projection and counts its synapses
        cut = {j: n for j, n in part.crossings.items()}
        assert sum(cut.values()) == part.cross_synapses
        for j, n in cut.items():
            pr = net.projections[j]
            t, s = np.nonzero(pr.connections())
            assert n == np.count_nonzero(part.placement[pr.source][s]
                                         != part.placement[pr.target][t])


@pytest.mark.parametrize("alloc,cores", [("in_order", 2), ("metis", 2), ("metis", 3)])
def test_partitioned_cores_compute_exactly_the_whole_network(alloc, cores):
    """Per-neuron parameters, delays 0..3, recurrence and STDP on a projection whose
    target is split (in->a) and on one that crosses cores (a->b, delay 2)."""
    net = make_net(0, stdp=True)
    net.projections[1].stdp = snnkit.STDP(a_plus=0.04, a_minus=0.05, w_min=-1, w_max=1,
                                          bounds="soft")
    net = snnkit.quantize(net)[0]
    x = torch.as_tensor(np.random.default_rng(1).random((30, 2, 12)) < 0.3)
    rec = ("v", "i", "theta", "weights")
    ref = snnkit.simulate(net, x, backend="fixed", record=rec)
    part = snnkit.partition(net, cores, SMALL, allocator=alloc)
    assert 1 in part.crossings  # a->b crosses
    results = [snnkit.simulate(c.net, part.local_inputs(c.index, ref.spikes), backend="fixed",
                               record=rec) for c in part.cores]
    got = part.merge({"in": x}, results, "fixed")
    for name in ref.spikes:
        assert torch.equal(got.spikes[name], ref.spikes[name]), name
    for name, st in ref.states.items():
        for var in st:
            assert torch.equal(got.states[name][var].long(), st[var].long()), (name, var)
    assert set(got.weights) == {"in->a", "a->b"}
    for name in ref.weights:
        assert torch.equal(got.weights[name], ref.weights[name]), name
        assert torch.equal(got.weight_trace[name], ref.weight_trace[name]), name
    assert ref.spikes["b"].any() and ref.spikes["c"].any()


def test_every_core_respects_the_limits_and_a_too_small_core_is_named():
    net = snnkit.quantize(make_net(2, stdp=True))[0]
    part = snnkit.partition(net, 2, SMALL)
    for core in part.cores:
        for what, (n, cap) in core.needs(SMALL).items():
            assert n <= cap, (core.index, what)
    with pytest.raises(snnkit.NetworkError, match=r"core \d .*weight words needed, 40 "):
        snnkit.partition(net, 2, HardwareConfig(n_max=32, syn_max=40))
    with pytest.raises(snnkit.NetworkError, match="17 neurons, 2 x 8 \\(N_MAX\\)"):
        snnkit.partition(net, 2, HardwareConfig(n_max=8))
    with pytest.raises(snnkit.NetworkError, match="cores: must be a positive integer"):
        snnkit.partition(net, 0)
    # a core's neurons count the copies of other cores' sources it reads, and say so
    wide = snnkit.Network()
    wide.add_input("in", 16)
    wide.add_population("h", 60)
    wide.add_population("o", 10)
    wide.connect("in", "h", np.full((60, 16), 0.01))
    wide.connect("h", "o", np.full((10, 60), 0.01))
    with pytest.raises(snnkit.NetworkError) as e:
        snnkit.partition(wide, 4, HardwareConfig(n_max=64), allocator="in_order")
    m = re.search(r"(\d+) neurons \(inputs included\) needed \((\d+) of its own neurons, "
                  r"(\d+) network inputs, (\d+) copies of neurons on other cores", str(e.value))
    assert m, e.value
    n, own, inputs, proxies = map(int, m.groups())
    assert n == own + inputs + proxies > 64 and proxies > 0 and own <= 86 // 4 + 1


class Fixed(Allocator):
    """A given placement (a test's hand-made case)."""

    name = "fixed"

    def __init__(self, cores):
        self.cores = np.asarray(cores)

    def place(self, graph, cores):
        return self.cores


def chain():
    net = snnkit.Network(name="chain")
    net.add_input("in", 2)
    for name in ("a", "b", "c"):
        net.add_population(name, 2, snnkit.LIF(beta=0.5))
    net.connect("in", "a", 0.6)
    net.connect("a", "b", 0.6)
    net.connect("b", "c", 0.6)
    return snnkit.quantize(net)[0]


def test_delay0_crossings_run_in_waves_and_a_cycle_is_refused():
    net = chain()
    part = snnkit.partition(net, 2, SMALL, allocator=Fixed([0, 0, 1, 1, 1, 1]))
    assert part.waves == [[0], [1]]  # b on core 1 needs a's spikes of the same step
    assert part.same_step_crossings == part.cross_synapses == 4
    assert set(part.cores[1].sources) == {"a.now"}
    assert snnkit.partition(net, 3, SMALL, allocator="in_order").waves == [[0], [1], [2]]
    with pytest.raises(snnkit.NetworkError, match=r"cores \[0, 1\] wait for each other"):
        snnkit.partition(net, 2, SMALL, allocator=Fixed([0, 0, 1, 1, 0, 0]))  # a, c | b


def test_delayed_crossings_run_in_one_wave_through_a_previous_step_proxy():
    net = chain()
    for pr in net.projections[1:]:
        pr.delay = 2
    part = snnkit.partition(net, 2, SMALL, allocator=Fixed([0, 0, 1, 1, 1, 1]))
    assert part.waves == [[0, 1]]
    proxy = part.cores[1].net.projections[0]
    assert (proxy.source, proxy.target, proxy.delay) == ("a.prev", "b", 1)


def test_a_network_that_fits_fewer_cores_is_placed_on_them():
    """Spread over all 4 cores, each core reads copies of most of the recurrent layer and
    exceeds N_MAX; on 2 it fits. The partition (and so a 4-core board's load, which refused
    it, advising more cores) uses 2 cores, leaves 2 empty, says so, and computes exactly the
    whole network."""
    rng = np.random.default_rng(0)
    net = snnkit.Network()
    net.add_input("in", 10)
    net.add_population("h", 24, snnkit.LIF(beta=0.9, threshold=1.0))
    net.add_population("o", 4, snnkit.LIF(beta=0.9, threshold=1.0))
    net.connect("in", "h", rng.uniform(0, 0.5, (24, 10)))
    net.connect("h", "h", rng.uniform(-0.2, 0.2, (24, 24)), delay=1)
    net.connect("h", "o", rng.uniform(0, 0.3, (4, 24)))
    net = snnkit.quantize(net)[0]
    limits = HardwareConfig(n_max=52, p_max=16, pr_max=32)
    part = snnkit.partition(net, 4, limits)
    assert [c.net is None for c in part.cores] == [False, False, True, True]
    assert re.fullmatch(r"placed on 2 of the 4 cores \(on all of them: core \d \(metis "
                        r"placement on 4 cores\): \d+ neurons .* available \(\d+ too many\)\)",
                        part.notes[0]), part.notes
    assert "core 2: empty" in str(part) and "note: placed on 2 of the 4 cores" in str(part)
    x = torch.as_tensor(rng.random((20, 2, 10)) < 0.3)
    ref = snnkit.simulate(net, x, backend="fixed")
    results = [None if c.net is None else
               snnkit.simulate(c.net, part.local_inputs(c.index, ref.spikes), backend="fixed")
               for c in part.cores]
    got = part.merge({"in": x}, results, "fixed")
    for name in ref.spikes:
        assert torch.equal(got.spikes[name], ref.spikes[name]), name
    assert ref.spikes["o"].any()
    with pytest.raises(snnkit.NetworkError, match=r"core \d \(metis placement on 4 cores\): .* "
                                                  r"too many\); use more cores or bigger ones"):
        snnkit.partition(net, 4, HardwareConfig(n_max=36, p_max=16, pr_max=32))
