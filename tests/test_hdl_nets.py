"""Random and adversarial networks for the RTL tests, built in integer LSBs so that the
extremes of every format (the largest and smallest weights, saturating sums) are reached
exactly. Shared by tests/test_hdl_*.py."""

from __future__ import annotations

import numpy as np
import torch

from snnkit import IF, LIF, STDP, CubaLIF, Network, Quantization
from snnkit.compiler import HardwareConfig

Q = Quantization(weight_bits=8, state_bits=16, frac_bits=6, decay_bits=12, trace_bits=8,
                 trace_frac_bits=6, stdp_frac_bits=8)
LSB = 2.0 ** -Q.frac_bits
W_LO, W_HI = -(1 << (Q.weight_bits - 1)), (1 << (Q.weight_bits - 1)) - 1
S_HI = (1 << (Q.state_bits - 1)) - 1
# one hardware configuration for every test network: one build per simulator per session
CONFIG = HardwareConfig(n_max=64, syn_max=2048, p_max=8, pr_max=16, d_max=3, tr_max=256,
                        weight_bits=8, state_bits=16, decay_bits=12, trace_bits=8, frac_bits=6,
                        trace_frac_bits=6, stdp_frac_bits=8)


def _decay(rng) -> float:
    return float(rng.choice([0.0, 1.0, rng.integers(0, 4097) / 4096]))


def _neuron(rng):
    kind = rng.integers(3)
    common = {"threshold": int(rng.integers(1, 400)) * LSB,
                  "reset": str(rng.choice(["subtract", "value"])),
                  "v_reset": int(rng.integers(-100, 100)) * LSB,
                  "refractory": int(rng.choice([0, 0, 1, 3])),
                  "bias": int(rng.integers(-20, 30)) * LSB,
                  "v_init": int(rng.integers(-50, 50)) * LSB}
    if rng.random() < 0.3:
        common.update(adapt_plus=int(rng.integers(1, 60)) * LSB, adapt_decay=_decay(rng))
    if kind == 0:
        return IF(**common)
    if kind == 1:
        return LIF(beta=_decay(rng), **common)
    return CubaLIF(alpha=_decay(rng), beta=_decay(rng), **common)


def _weights(rng, shape) -> np.ndarray:
    w = rng.integers(-60, 110, shape)
    extremes = rng.random(shape) < 0.1
    w[extremes] = rng.choice([W_LO, W_HI], int(extremes.sum()))
    return w * LSB


def _stdp(rng) -> STDP:
    lo = int(rng.integers(W_LO, 0))
    hi = int(rng.integers(1, W_HI + 1))
    return STDP(a_plus=int(rng.integers(0, 3000)) * 2.0 ** -14,
                a_minus=int(rng.integers(0, 3000)) * 2.0 ** -14,
                pre_decay=_decay(rng), post_decay=_decay(rng),
                rule=str(rng.choice(["all_pairs", "nearest"])),
                bounds=str(rng.choice(["hard", "soft"])), w_min=lo * LSB, w_max=hi * LSB)


def random_net(seed: int, stdp: bool) -> Network:
    """2-3 populations after an input, forward (delay 0..3) and recurrent (delay >= 1) links,
    masks, and (with ``stdp``) plastic projections with random rules and plastic masks."""
    rng = np.random.default_rng(seed)
    net = Network(quantization=Q)
    net.add_input("in", int(rng.integers(2, 9)))
    names = ["in"]
    for k in range(int(rng.integers(1, 3))):
        name = f"p{k}"
        net.add_population(name, int(rng.integers(1, 9)), _neuron(rng))
        names.append(name)
    for tgt_i in range(1, len(names)):
        for src_i in range(len(names)):
            if src_i >= tgt_i and rng.random() < 0.5:
                continue  # fewer recurrent links
            if src_i < tgt_i - 1 and rng.random() < 0.5:
                continue
            src, tgt = names[src_i], names[tgt_i]
            shape = (net.population(tgt).size, net.population(src).size)
            delay = int(rng.integers(0 if src_i < tgt_i else 1, 4))
            mask = rng.random(shape) < 0.8 if rng.random() < 0.4 else None
            kw = {}
            if stdp and rng.random() < 0.7:
                kw["stdp"] = _stdp(rng)
                if rng.random() < 0.5:
                    kw["plastic_mask"] = rng.random(shape) < 0.7
            net.connect(src, tgt, _weights(rng, shape), mask=mask, delay=delay, **kw)
    return net


def per_neuron_net(seed: int, stdp: bool = False) -> Network:
    """Per-neuron values in every parameter: a different bias for each neuron (region BIAS)
    and thresholds, decays, v_init, v_reset, adaptation and refractory periods that change at
    a cut inside each population (the compiler splits it into two runs), feed-forward and
    recurrent links between the split populations (with ``stdp``: a plastic projection into one)."""
    rng = np.random.default_rng(seed)
    net = Network(quantization=Q)
    net.add_input("in", 6)

    def two(lo, hi, n, cut, scale=LSB):  # per-neuron values, one per side of the cut
        a, b = rng.integers(lo, hi, 2)
        return np.where(np.arange(n) < cut, a, b) * scale

    net.add_population("a", 7, CubaLIF(
        alpha=two(0, 4097, 7, 3, 1 / 4096), beta=two(2000, 4097, 7, 3, 1 / 4096),
        threshold=two(20, 300, 7, 3), bias=rng.integers(-20, 30, 7) * LSB,
        v_init=two(-40, 40, 7, 3), refractory=np.where(np.arange(7) < 3, 1, 2)))
    net.add_population("b", 5, LIF(
        beta=0.75, threshold=two(20, 200, 5, 2), reset="value", v_reset=two(-50, 50, 5, 2),
        bias=rng.integers(-20, 30, 5) * LSB, adapt_plus=two(0, 40, 5, 2),
        adapt_decay=two(3000, 4097, 5, 2, 1 / 4096)))
    net.connect("in", "a", _weights(rng, (7, 6)), mask=rng.random((7, 6)) < 0.8,
                stdp=_stdp(rng) if stdp else None)
    net.connect("a", "b", _weights(rng, (5, 7)), delay=1)
    net.connect("b", "a", _weights(rng, (7, 5)), delay=2)
    net.connect("a", "a", _weights(rng, (7, 7)), delay=1)
    return net


def random_inputs(net: Network, steps: int, batch: int, seed: int, rate=None) -> torch.Tensor:
    rng = np.random.default_rng(seed + 1000)
    p = rng.uniform(0.1, 0.7) if rate is None else rate
    return torch.from_numpy(rng.random((steps, batch, net.n_inputs)) < p)


def saturating_net() -> Network:
    """Every adder saturates: extreme weights from many always-on inputs, both signs."""
    net = Network(quantization=Q)
    net.add_input("in", 40)
    net.add_population("pos", 3, CubaLIF(alpha=1.0, beta=1.0, threshold=S_HI * LSB,
                                         bias=S_HI * LSB))
    net.add_population("neg", 3, CubaLIF(alpha=1.0, beta=1.0, threshold=S_HI * LSB,
                                         bias=-S_HI * LSB, v_init=-S_HI * LSB))
    net.connect("in", "pos", W_HI * LSB)
    net.connect("in", "neg", W_LO * LSB)
    return net


def always_spiking_net() -> Network:
    """Every neuron spikes on every step (threshold below the resting input)."""
    net = Network(quantization=Q)
    net.add_input("in", 4)
    net.add_population("a", 6, LIF(beta=0.5, threshold=-200 * LSB, bias=10 * LSB))
    net.add_population("b", 5, IF(threshold=-100 * LSB, reset="value", v_reset=0.0))
    net.connect("in", "a", 3 * LSB)
    net.connect("a", "b", W_HI * LSB)
    net.connect("b", "a", W_HI * LSB, delay=1)
    return net


def always_spiking_split_net() -> Network:
    """:func:`always_spiking_net` with two thresholds in population a: split into two runs."""
    net = always_spiking_net()
    net.populations[1].neuron.threshold = np.array([-200] * 3 + [-150] * 3) * LSB
    return net


def silent_net() -> Network:
    """No neuron ever spikes (unreachable threshold, inhibitory weights)."""
    net = Network(quantization=Q)
    net.add_input("in", 5)
    net.add_population("a", 4, CubaLIF(alpha=0.9, beta=0.95, threshold=S_HI * LSB))
    net.add_population("b", 3, LIF(beta=0.9, threshold=S_HI * LSB))
    net.connect("in", "a", W_LO * LSB)
    net.connect("a", "b", W_HI * LSB, delay=2)
    return net


# --------------------------------------------------------------------------- the generators
# The RTL tests are only as strong as their networks: check on the fixed-point simulator that
# the adversarial networks really are adversarial and that the random ones exercise the core.


def _fixed(net, steps=20, batch=1, rate=1.0):
    import snnkit

    x = random_inputs(net, steps, batch, 0, rate=rate)
    return snnkit.simulate(net, x, backend="fixed", record=("v", "i"))


def test_saturating_net_saturates_every_adder():
    r = _fixed(saturating_net())
    lo, hi = -(1 << (Q.state_bits - 1)), S_HI
    assert (r.states["pos"]["i"][-1] == hi).all() and (r.states["neg"]["i"][-1] == lo).all()
    assert (r.states["neg"]["v"][-1] == lo).all()
    assert r.spikes["pos"][2:].all()  # v reaches the largest state, the threshold


def test_always_spiking_net_spikes_every_step():
    r = _fixed(always_spiking_net(), rate=0.0)
    assert r.spikes["a"].all() and r.spikes["b"].all()


def test_silent_net_never_spikes():
    r = _fixed(silent_net())
    assert not r.spikes["a"].any() and not r.spikes["b"].any()


def test_random_nets_spike_learn_and_fit_the_test_configuration():
    import snnkit
    from snnkit.compiler import build_images

    spiking = learned = 0
    for seed in range(8):
        net = random_net(seed, stdp=True)
        build_images(net, CONFIG)  # raises NetworkError if it does not fit
        x = random_inputs(net, 12, 1, seed)
        r = snnkit.simulate(net, x, backend="fixed")
        spiking += any(bool(r.spikes[p.name].any()) for p in net.neuron_populations)
        for pr in net.projections:
            if pr.name in r.weights:
                w0 = torch.from_numpy(np.round(pr.weight / LSB).astype(np.int64))
                learned += bool((r.weights[pr.name][0] != w0).any())
    assert spiking >= 6 and learned >= 4
