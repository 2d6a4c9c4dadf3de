"""STDP against hand-computed spike-pair examples, in float and in fixed point."""

import numpy as np
import pytest
import torch

import snnkit
from snnkit import IF, STDP

Q = snnkit.Quantization(weight_bits=8, state_bits=16, frac_bits=6, decay_bits=12,
                        trace_bits=8, trace_frac_bits=6, stdp_frac_bits=8)


def pair_net(stdp, w0=0.25, plastic_mask=None):
    """pre -> post (plastic, weak) ; force -> post (strong): post fires exactly when forced."""
    net = snnkit.Network(quantization=Q)
    net.add_input("pre", 1)
    net.add_input("force", 1)
    net.add_population("post", 1, IF(threshold=1.0, reset="value"))
    net.connect("pre", "post", w0, stdp=stdp, plastic_mask=plastic_mask)
    net.connect("force", "post", 1.0)
    return net


def run(net, pre_steps, post_steps, steps=8, backend="float", **kw):
    x = torch.zeros(steps, 1, 2, dtype=torch.bool)
    x[list(pre_steps), 0, 0] = True
    x[list(post_steps), 0, 1] = True
    res = snnkit.simulate(net, x, backend=backend, **kw)
    assert res.spikes["post"][:, 0, 0].nonzero().flatten().tolist() == sorted(post_steps)
    w = res.weights["pre->post"][0, 0, 0].item()
    return w * (res.lsb or 1.0)


D, AP, AM = 0.9, 0.1, 0.12


@pytest.mark.parametrize("rule", ["all_pairs", "nearest"])
def test_pre_then_post_potentiates_by_a_plus_times_decayed_trace(rule):
    net = pair_net(STDP(a_plus=AP, a_minus=AM, pre_decay=D, post_decay=D, rule=rule))
    assert run(net, [0], [3]) == pytest.approx(0.25 + AP * D**3, rel=1e-6)


@pytest.mark.parametrize("rule", ["all_pairs", "nearest"])
def test_post_then_pre_depresses_by_a_minus_times_decayed_trace(rule):
    net = pair_net(STDP(a_plus=AP, a_minus=AM, pre_decay=D, post_decay=D, rule=rule))
    assert run(net, [2], [0]) == pytest.approx(0.25 - AM * D**2, rel=1e-6)


def test_all_pairs_sums_every_earlier_spike_nearest_keeps_the_last():
    kw = dict(a_plus=AP, a_minus=0.0, pre_decay=D, post_decay=D)
    allp = run(pair_net(STDP(rule="all_pairs", **kw)), [0, 1], [3])
    near = run(pair_net(STDP(rule="nearest", **kw)), [0, 1], [3])
    assert allp == pytest.approx(0.25 + AP * (D**3 + D**2), rel=1e-6)
    assert near == pytest.approx(0.25 + AP * D**2, rel=1e-6)


def test_simultaneous_pre_and_post_do_not_pair():
    net = pair_net(STDP(a_plus=AP, a_minus=AM, pre_decay=D, post_decay=D))
    assert run(net, [2], [2]) == 0.25


def test_soft_bounds_scale_by_distance_to_the_bound():
    kw = dict(a_plus=AP, a_minus=AM, pre_decay=D, post_decay=D, bounds="soft", w_min=0.0,
              w_max=1.0)
    up = run(pair_net(STDP(**kw)), [0], [3])
    assert up == pytest.approx(0.25 + AP * D**3 * (1.0 - 0.25), rel=1e-6)
    down = run(pair_net(STDP(**kw)), [2], [0])
    assert down == pytest.approx(0.25 - AM * D**2 * (0.25 - 0.0), rel=1e-6)


def test_hard_bounds_clip():
    net = pair_net(STDP(a_plus=0.5, a_minus=0.0, pre_decay=1.0, post_decay=1.0, w_max=0.5))
    assert run(net, [0], [1, 3, 5, 7]) == 0.5


def test_learning_switch_and_plastic_mask():
    stdp = STDP(a_plus=AP, a_minus=AM, pre_decay=D, post_decay=D)
    assert run(pair_net(stdp), [0], [3], learning=False) == 0.25
    assert run(pair_net(STDP(a_plus=AP, enabled=False)), [0], [3]) == 0.25
    assert run(pair_net(STDP(a_plus=AP, enabled=False)), [0], [3], learning=True) != 0.25
    assert run(pair_net(stdp, plastic_mask=np.zeros((1, 1), bool)), [0], [3]) == 0.25


def test_weight_trace_is_recorded_per_step():
    net = pair_net(STDP(a_plus=AP, a_minus=AM, pre_decay=D, post_decay=D))
    x = torch.zeros(8, 1, 2, dtype=torch.bool)
    x[0, 0, 0] = x[3, 0, 1] = True
    res = snnkit.simulate(net, x, record=("weights",))
    wt = res.weight_trace["pre->post"][:, 0, 0, 0]
    assert torch.all(wt[:3] == 0.25) and torch.all(wt[3:] == wt[-1]) and wt[-1] > 0.25


# ---- fixed point: the integers worked out by hand from docs/fixed-point.md


def dec(x, d):  # decay(x, d) with 12 decay bits
    return (x * d + 2048) >> 12


def test_fixed_point_potentiation_by_hand():
    net = pair_net(STDP(a_plus=AP, a_minus=AM, pre_decay=D, post_decay=D))
    d_q = round(D * 4096)  # 3686
    a_q = int(np.floor(AP * 2 ** (6 + 8) + 0.5))  # 1638
    trace = 64  # 1.0 after the pre spike at step 0
    for _ in range(3):  # steps 1, 2, 3 decay it before the weight change
        trace = dec(trace, d_q)
    assert trace == 47
    dw = (trace * a_q + (1 << 13)) >> 14  # scale(x, a, stdp_frac + trace_frac)
    assert dw == 5
    w = run(net, [0], [3], backend="fixed")
    assert w == (16 + dw) / 64  # w0 = 0.25 = 16 LSB


def test_fixed_point_soft_depression_by_hand():
    kw = dict(a_plus=AP, a_minus=AM, pre_decay=D, post_decay=D, bounds="soft", w_min=-0.5)
    net = pair_net(STDP(**kw))
    d_q, a_q = round(D * 4096), int(np.floor(AM * 2**14 + 0.5))
    trace = dec(dec(64, d_q), d_q)  # post at 0, pre arrives at 2
    dw = (trace * (16 - (-32)) * a_q + (1 << 19)) >> 20  # shift = 8 + 6 + 6
    w = run(net, [2], [0], backend="fixed")
    assert w == (16 - dw) / 64 and dw > 0


def test_fixed_point_all_pairs_trace_saturates():
    # five pre spikes in a row with no decay: 5.0 does not fit 8 bits with 6 fractional (3.98)
    net = pair_net(STDP(a_plus=AP, a_minus=0.0, pre_decay=1.0, post_decay=1.0), w0=0.0)
    a_q = int(np.floor(AP * 2**14 + 0.5))
    w = run(net, [0, 1, 2, 3, 4], [6], backend="fixed")
    assert w == ((255 * a_q + (1 << 13)) >> 14) / 64
