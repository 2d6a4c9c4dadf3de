"""The CPU kernel on every topology (snnkit/cpu_path.py) against the torch path it replaces.

Random networks with recurrent, self and backward projections, delays, STDP of every kind,
per-neuron parameters and every reset: the fixed point bit for bit (spikes, v, i, theta and
the weights after every step), the float the same spikes and learned weights up to
summation-order flips.
"""

from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snnkit
from snnkit import IF, LIF, STDP, CubaLIF, cpu_path, kernels

RESETS = ["subtract", "value", "delayed"]
pytestmark = pytest.mark.skipif(kernels.load() is None, reason="no C compiler")


def _neuron(rng, n):
    """Any model; every numeric parameter per neuron or not."""
    def maybe(lo, hi):
        return rng.uniform(lo, hi, n) if rng.random() < 0.5 else float(rng.uniform(lo, hi))

    common = dict(threshold=maybe(0.3, 1.5), reset=str(rng.choice(RESETS)),
                  v_reset=maybe(-0.2, 0.2), bias=maybe(-0.05, 0.1), v_init=maybe(-0.2, 0.3),
                  refractory=rng.integers(0, 3, n) if rng.random() < 0.5
                  else int(rng.integers(0, 3)))
    if rng.random() < 0.4:
        common.update(adapt_plus=maybe(0.0, 0.2), adapt_decay=maybe(0.8, 1.0))
    kind = rng.integers(3)
    if kind == 0:
        return IF(**common)
    if kind == 1:
        return LIF(beta=maybe(0.5, 1.0), **common)
    return CubaLIF(alpha=maybe(0.0, 0.9), beta=maybe(0.5, 1.0), **common)


def _stdp(rng):
    return STDP(a_plus=float(rng.uniform(0, 0.05)), a_minus=float(rng.uniform(0, 0.05)),
                pre_decay=float(rng.uniform(0.5, 1)), post_decay=float(rng.uniform(0.5, 1)),
                rule=str(rng.choice(["all_pairs", "nearest"])),
                bounds=str(rng.choice(["hard", "soft"])), w_min=-0.6, w_max=0.8)


def random_net(seed: int, n_pops: int) -> snnkit.Network:
    """Inputs (spikes, maybe currents) -> n_pops populations; every ordered pair of
    populations linked with probability 1/2 (backward and self links with delay >= 1)."""
    rng = np.random.default_rng(seed)
    net = snnkit.Network()
    net.add_input("in", int(rng.integers(3, 30)))
    if rng.random() < 0.3:
        net.add_input("cur", 3, encoding="current")
    names = []
    for k in range(n_pops):
        n = int(rng.integers(1, 40))
        net.add_population(f"p{k}", n, _neuron(rng, n))
        names.append(f"p{k}")
    for i, tgt in enumerate(names):
        t = net.population(tgt).size
        for src in ["in", "cur"] + names:
            if src == "cur" and not any(p.name == "cur" for p in net.populations):
                continue
            j = names.index(src) if src in names else -1
            if src != "in" and rng.random() < 0.5:
                continue
            s = net.population(src).size
            delay = int(rng.integers(0 if j < i else 1, 4))
            mask = rng.random((t, s)) < 0.7 if rng.random() < 0.3 else None
            kw = {}
            if src != "cur" and rng.random() < 0.4:
                kw["stdp"] = _stdp(rng)
                if rng.random() < 0.5:
                    kw["plastic_mask"] = rng.random((t, s)) < 0.6
            net.connect(src, tgt, rng.normal(0.15, 0.4, (t, s)), mask=mask, delay=delay, **kw)
    return net


def _inputs(net, seed, steps=24, batch=2):
    rng = np.random.default_rng(seed + 1)
    x = {"in": rng.random((steps, batch, net.population("in").size)) < 0.3}
    if any(p.name == "cur" for p in net.populations):
        x["cur"] = rng.normal(0.2, 0.5, (steps, batch, 3))
    return x


def _run(net, x, kernel: bool, backend):
    """simulate() on the kernel or on torch; asserts the kernel path really ran."""
    calls = []
    real = (kernels.run_layer, kernels.run_group)

    def spy(f):
        return lambda *a, **k: calls.append(1) or f(*a, **k)

    with mock.patch.dict("os.environ", {"SNNKIT_KERNELS": "1" if kernel else "0"}), \
            mock.patch.object(kernels, "run_layer", spy(real[0])), \
            mock.patch.object(kernels, "run_group", spy(real[1])):
        res = snnkit.simulate(net, x, backend=backend, device="cpu",
                              record=("v", "i", "theta", "weights"))
    assert bool(calls) == kernel
    return res


FORMATS = [snnkit.Quantization(),  # int32 states, 8-bit weights
           snnkit.Quantization(weight_bits=12, state_bits=24, frac_bits=8, trace_bits=12,
                               trace_frac_bits=8)]  # int64 states, 16-bit weights


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31), st.integers(1, 3), st.sampled_from([0, 1]))
def test_fixed_point_kernel_is_bit_exact_on_random_networks(seed, n_pops, fmt):
    net = random_net(seed, n_pops)
    try:
        net, _ = snnkit.quantize(net, FORMATS[fmt])
    except snnkit.NetworkError:  # a value that does not fit this format
        return
    x = _inputs(net, seed)
    fast, slow = _run(net, x, True, "fixed"), _run(net, x, False, "fixed")
    assert set(fast.spikes) == set(slow.spikes) and set(fast.weights) == set(slow.weights)
    for k in slow.spikes:
        assert torch.equal(fast.spikes[k], slow.spikes[k]), k
    for k in slow.states:
        for var in ("v", "i", "theta"):
            assert torch.equal(fast.states[k][var], slow.states[k][var]), (k, var)
    for k in slow.weights:
        assert fast.weights[k].dtype == slow.weights[k].dtype == torch.int64
        assert torch.equal(fast.weights[k], slow.weights[k]), k
        assert torch.equal(fast.weight_trace[k], slow.weight_trace[k]), k


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**31), st.integers(1, 3))
def test_float_kernel_agrees_on_random_networks(seed, n_pops):
    net = random_net(seed, n_pops)
    x = _inputs(net, seed)
    fast, slow = _run(net, x, True, "float"), _run(net, x, False, "float")
    flips = sum(int((fast.spikes[k] != slow.spikes[k]).sum()) for k in slow.spikes)
    total = sum(v.numel() for v in slow.spikes.values())
    assert flips <= 1e-3 * total  # a membrane within ~1e-6 of the threshold (summation order)
    if not flips:  # the same spikes: STDP is the same float operations, one by one
        for k in slow.weights:
            assert torch.equal(fast.weights[k], slow.weights[k]), k
    for k in slow.states:  # the first step differs in summation order only
        assert torch.allclose(fast.states[k]["v"][0], slow.states[k]["v"][0], atol=1e-5)


def test_groups_are_strongly_connected_parts_in_dependency_order():
    net = snnkit.Network()
    net.add_input("in", 2)
    for name in "abcdef":
        net.add_population(name, 2, LIF())
    net.connect("in", "a", 1.0)
    net.connect("a", "b", 1.0)
    net.connect("b", "a", 1.0, delay=1)  # a <-> b: one group
    net.connect("c", "a", 1.0, delay=2)  # backward, no loop: c runs before a
    net.connect("in", "c", 1.0)
    net.connect("d", "d", 1.0, delay=1)  # a self loop
    net.connect("b", "e", 1.0)
    net.connect("f", "e", 1.0, delay=1)  # e after f (no loop)
    assert cpu_path.groups(net) == [["c"], ["a", "b"], ["d"], ["f"], ["e"]]


def test_each_group_is_one_kernel_call(monkeypatch):
    rng = np.random.default_rng(3)
    net = snnkit.Network()
    net.add_input("in", 20)
    net.add_population("ff", 30, LIF(beta=0.9, bias=0.05))  # layer kernel
    net.add_population("rec", 25, CubaLIF(alpha=0.5, beta=0.9, reset="delayed"))  # step kernel
    net.add_population("out", 5, LIF(beta=0.8))  # layer kernel
    net.connect("in", "ff", rng.normal(0.2, 0.3, (30, 20)))
    net.connect("ff", "rec", rng.normal(0.1, 0.3, (25, 30)))
    net.connect("rec", "rec", rng.normal(0, 0.3, (25, 25)), delay=1)
    net.connect("rec", "out", rng.normal(0.2, 0.3, (5, 25)))
    calls = {"layer": 0, "group": 0, "sums": 0}
    real = (kernels.run_layer, kernels.run_group)

    def layer(*a, **k):
        calls["sums" if k.get("sums") else "layer"] += 1
        return real[0](*a, **k)

    monkeypatch.setattr(kernels, "run_layer", layer)
    monkeypatch.setattr(kernels, "run_group", lambda *a, **k: calls.update(
        group=calls["group"] + 1) or real[1](*a, **k))
    snnkit.simulate(net, rng.random((10, 2, 20)) < 0.3, device="cpu")
    # ff and out on the layer kernel; rec's input from ff summed beforehand, then stepped
    assert calls == {"layer": 2, "group": 1, "sums": 1}


@pytest.mark.parametrize("density,cache,inside", [(0.0, 1 << 20, False), (1.0, 1 << 20, True),
                                                   (1.0, 1000, False)])
def test_fixed_point_group_sums_earlier_spikes_itself_or_beforehand_bit_exact(
        monkeypatch, density, cache, inside):
    """Sparse spike inputs from earlier populations are summed in the step kernel (below the
    density, and the group's weights within the cache size) or beforehand by the layer kernel:
    the same integers as the torch path either way."""
    rng = np.random.default_rng(5)
    net = snnkit.Network()
    net.add_input("in", 40)
    net.add_population("ff", 30, LIF(beta=0.9, bias=0.05))
    net.add_population("rec", 25, CubaLIF(alpha=0.5, beta=0.9, reset="delayed"))
    net.connect("in", "rec", rng.normal(0.1, 0.3, (25, 40)), delay=2)
    net.connect("in", "ff", rng.normal(0.2, 0.3, (30, 40)))
    net.connect("ff", "rec", rng.normal(0.1, 0.3, (25, 30)))
    net.connect("rec", "rec", rng.normal(0, 0.3, (25, 25)), delay=1)
    net, _ = snnkit.quantize(net)
    x = {"in": rng.random((30, 3, 40)) < 0.1}
    monkeypatch.setattr(cpu_path, "GROUP_SUM_DENSITY", density)
    monkeypatch.setattr(cpu_path, "GROUP_SUM_BYTES", cache)
    sums = []
    real = kernels.run_layer
    monkeypatch.setattr(kernels, "run_layer", lambda *a, **k: sums.append(k.get("sums")) or
                        real(*a, **k))
    fast, slow = _run(net, x, True, "fixed"), _run(net, x, False, "fixed")
    assert sums.count(True) == (0 if inside else 1)
    for k in slow.spikes:
        assert torch.equal(fast.spikes[k], slow.spikes[k]), k
    for k in slow.states:
        for var in ("v", "i", "theta"):
            assert torch.equal(fast.states[k][var], slow.states[k][var]), (k, var)
    assert slow.spikes["rec"].any()


@pytest.mark.parametrize("case", ["float", "small batch", "fixed", "plastic self", "fed back"])
def test_recurrent_kernel_takes_float_populations_fed_back_by_themselves_only(case):
    # cpu_path._recurrent: a float population whose only step-by-step input is its own
    # spikes, 8 or more samples, goes to kernels.run_rec; anything else to the step kernel
    # (run_group), with the step kernel's spikes bit for bit
    rng = np.random.default_rng(5)
    net = snnkit.Network()
    net.add_input("in", 30)
    net.add_population("h", 50, LIF(beta=0.9, threshold=0.8, reset="delayed"))
    net.connect("in", "h", rng.normal(0.05, 0.3, (50, 30)))
    net.connect("h", "h", rng.normal(0.0, 0.1, (50, 50)), delay=1,
                stdp=STDP(w_min=-1.0, w_max=1.0) if case == "plastic self" else None)
    if case == "fed back":  # h <-> g: one group of two
        net.add_population("g", 10, LIF(beta=0.8))
        net.connect("h", "g", rng.normal(0.1, 0.3, (10, 50)))
        net.connect("g", "h", rng.normal(0.0, 0.3, (50, 10)), delay=1)
    if case == "fixed":
        net, _ = snnkit.quantize(net)
    batch = 3 if case == "small batch" else 9
    x = {"in": rng.random((20, batch, 30)) < 0.2}
    backend = "fixed" if case == "fixed" else "float"
    learn = {"learning": True} if case == "plastic self" else {}
    with mock.patch.object(kernels, "run_rec", wraps=kernels.run_rec) as rec, \
            mock.patch.object(kernels, "run_group", wraps=kernels.run_group) as group:
        fast = snnkit.simulate(net, x, backend=backend, **learn)
    assert (rec.call_count, group.call_count) == ((1, 0) if case == "float" else (0, 1))
    with mock.patch.object(cpu_path, "_recurrent", return_value=False):
        ref = snnkit.simulate(net, x, backend=backend, **learn)  # all on the step kernel
    for k in fast.spikes:
        assert torch.equal(fast.spikes[k], ref.spikes[k]), k
    assert float(fast.spikes["h"].float().mean()) > 0.02
