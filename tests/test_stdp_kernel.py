"""The step kernel's fixed-point STDP (snnkit/_kernels_step.c) bit for bit against the torch
path, on networks large enough for its fast paths: rows of many cache lines starting at every
offset in a line, 8- and 16-bit weights updated a line at a time, rows whose trace scales to 0
skipped, arrivals and spiking targets in the same row, weights starting outside the bounds,
and the cases that fall back to the scalar loops (a plastic mask, steps too large for the
weights' type)."""

from unittest import mock

import numpy as np
import pytest
import torch

import snnkit
from snnkit import LIF, STDP, kernels

pytestmark = [pytest.mark.skipif(kernels.load() is None, reason="no C compiler"),
              pytest.mark.filterwarnings("ignore::snnkit.parameters.STDPBoundsWarning")]

FORMATS = {8: snnkit.Quantization(),  # 8-bit weights: int8 in the kernel
           12: snnkit.Quantization(weight_bits=12, state_bits=24, frac_bits=8, trace_bits=12,
                                   trace_frac_bits=8)}  # int16


def plastic_net(seed, rule, a_plus, masked, n_in=150, n_exc=100):
    """Inputs -> exc (plastic, hard bounds) <-> inh, as sim_speed's diehl_cook."""
    rng = np.random.default_rng(seed)
    net = snnkit.Network()
    net.add_input("in", n_in)
    net.add_population("exc", n_exc, LIF(beta=0.95, threshold=1.0, adapt_plus=0.05,
                                         adapt_decay=1.0))
    net.add_population("inh", n_exc, LIF(beta=0.9, threshold=0.5))
    stdp = STDP(a_plus=a_plus, a_minus=a_plus * 1.05, pre_decay=0.9, post_decay=0.85,
                rule=rule, bounds="hard", w_min=0.0, w_max=0.75)
    kw = {"plastic_mask": rng.random((n_exc, n_in)) < 0.8} if masked else {}
    # some weights outside [w_min, w_max]: the first step clamps them
    net.connect("in", "exc", rng.uniform(-0.1, 0.9, (n_exc, n_in)) * 0.4, stdp=stdp, **kw)
    eye = np.eye(n_exc, dtype=bool)
    net.connect("exc", "inh", 1.0 * eye, mask=eye)
    net.connect("inh", "exc", -0.4 * ~eye, mask=~eye, delay=1)
    return net


def run(net, x, kernel: bool):
    calls = []
    real = kernels.run_group
    with mock.patch.dict("os.environ", {"SNNKIT_KERNELS": "1" if kernel else "0"}), \
            mock.patch.object(kernels, "run_group",
                              lambda *a, **k: calls.append(1) or real(*a, **k)):
        res = snnkit.simulate(net, x, backend="fixed", device="cpu", record=("weights",))
    assert bool(calls) == kernel
    return res


@pytest.mark.parametrize("bits,rule,a_plus,masked", [
    (8, "all_pairs", 0.02, False),   # int8 lines; most rows' up scales to 0
    (8, "nearest", 0.05, False),
    (12, "all_pairs", 0.02, False),  # int16 lines
    (8, "all_pairs", 0.02, True),    # a plastic mask: the scalar loops
    (12, "all_pairs", 4.0, False),   # up beyond int8 but within int16 ...
    (8, "all_pairs", 1.9, False),    # ... and steps clamped at the bounds
])
def test_fixed_point_stdp_kernel_is_bit_exact(bits, rule, a_plus, masked):
    net, _ = snnkit.quantize(plastic_net(3, rule, a_plus, masked), FORMATS[bits])
    x = torch.from_numpy(np.random.default_rng(4).random((60, 2, 150)) < 0.08)
    fast, slow = run(net, x, True), run(net, x, False)
    for k in slow.spikes:
        assert torch.equal(fast.spikes[k], slow.spikes[k]), k
    assert slow.spikes["exc"].sum() > 20  # learning happens: targets spike
    w_fast, w_slow = fast.weights["in->exc"], slow.weights["in->exc"]
    assert torch.equal(w_fast, w_slow)
    assert torch.equal(fast.weight_trace["in->exc"], slow.weight_trace["in->exc"])
    w0 = torch.from_numpy(net.projections[0].weight)
    assert not torch.equal(w_slow[0].double(), w0 / slow.lsb)  # the weights did change
