"""Property-based: fixed-point states never wrap around, whatever the widths and values."""

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snnkit
from snnkit import CubaLIF


@st.composite
def extreme_nets(draw):
    wb = draw(st.integers(2, 12))
    sb = draw(st.integers(max(wb, 4), 20))
    frac = draw(st.integers(0, wb - 1))
    q = snnkit.Quantization(weight_bits=wb, state_bits=sb, frac_bits=frac,
                            decay_bits=draw(st.integers(1, 14)))
    sign = draw(st.sampled_from([1, -1]))
    lsb, wmax = 2.0**-frac, (1 << (wb - 1)) - 1
    n_in, n = draw(st.integers(1, 40)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    w = sign * rng.integers(0, wmax + 1, (n, n_in)) * lsb
    smax = ((1 << (sb - 1)) - 1) * lsb
    neuron = CubaLIF(alpha=draw(st.floats(0, 1)), beta=draw(st.floats(0, 1)),
                     threshold=draw(st.floats(lsb, smax)),
                     bias=sign * draw(st.integers(0, (1 << (sb - 1)) - 1)) * lsb,
                     reset=draw(st.sampled_from(["subtract", "value"])),
                     refractory=draw(st.integers(0, 3)))
    net = snnkit.Network(quantization=q)
    net.add_input("in", n_in)
    net.add_population("h", n, neuron)
    net.connect("in", "h", w)
    net.connect("h", "h", sign * wmax * lsb, delay=1)
    return net, sign, sb


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extreme_nets(), st.floats(0.0, 1.0))
def test_states_saturate_and_never_wrap(args, rate):
    net, sign, sb = args
    x = snnkit.encoders.poisson(np.full((2, net.n_inputs), rate), 25, seed=0)
    res = snnkit.simulate(net, x, backend="fixed", record=("v", "i"))
    lo, hi = -(1 << (sb - 1)), (1 << (sb - 1)) - 1
    for var in ("v", "i"):
        s = res.states["h"][var]
        assert s.min() >= lo and s.max() <= hi
        # every input (weights, bias) has one sign: a wrap-around would flip it
        if sign > 0:
            assert s.min() >= 0 or (var == "v" and net.populations[1].neuron.reset == "value")
        else:
            assert s.max() <= 0 or var == "v"
    assert res.states["h"]["i"].dtype in (torch.int32, torch.int64)  # integers, never floats
