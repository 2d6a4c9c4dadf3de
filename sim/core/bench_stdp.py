"""cocotb bench of one synapse's plasticity step of the core: sim/core/stdp_synapse.v (both
traces through hdl/snn_trace.v, each term through snn_stdp_bound, snn_stdp_factor,
snn_stdp_product and snn_stdp_term, then snn_stdp_dw and snn_stdp; snn_decay inside the
trace), combinational.

Reference model: snnkit.plasticity.stdp_step in FixedArith on a 1x1 projection, the
fixed-point simulator's own step function. Every test compares the new weight and traces.
"""

import random

import cocotb
import torch
from cocotb.triggers import Timer

from snnkit.arith import FixedArith
from snnkit.network import Quantization
from snnkit.plasticity import STDPParams, STDPState, stdp_step


def _q(dut) -> Quantization:
    return Quantization(weight_bits=int(dut.W_BITS.value), trace_bits=int(dut.T_BITS.value),
                        decay_bits=int(dut.D_BITS.value), frac_bits=int(dut.FRAC.value),
                        trace_frac_bits=int(dut.T_FRAC.value),
                        stdp_frac_bits=int(dut.STDP_FRAC.value))


def reference(q, v):
    sh = q.stdp_frac_bits + q.trace_frac_bits
    p = STDPParams(a_plus=v["a_plus"], a_minus=v["a_minus"], pre_decay=v["pre_decay"],
                   post_decay=v["post_decay"], nearest=v["nearest"], soft=v["soft"],
                   w_min=v["w_min"], w_max=v["w_max"], shift_hard=sh,
                   shift_soft=sh + q.frac_bits, plastic=torch.tensor([[bool(v["plastic"])]]))
    s = STDPState(w=torch.tensor([[[v["w"]]]]), x_pre=torch.tensor([[v["x_pre"]]]),
                  x_post=torch.tensor([[v["x_post"]]]))
    n = stdp_step(torch.tensor([[bool(v["pre"])]]), torch.tensor([[bool(v["post"])]]), s, p,
                  FixedArith(q))
    return int(n.w[0, 0, 0]), int(n.x_pre[0, 0]), int(n.x_post[0, 0])


async def apply(dut, v):
    ports = {"state_w": "w", "state_x_pre": "x_pre", "state_x_post": "x_post",
             "event_pre": "pre", "event_post": "post", "param_plastic": "plastic",
             "param_nearest": "nearest", "param_soft": "soft", "param_pre_decay": "pre_decay",
             "param_post_decay": "post_decay", "param_a_plus": "a_plus",
             "param_a_minus": "a_minus", "param_w_min": "w_min", "param_w_max": "w_max"}
    for port, key in ports.items():
        sig = getattr(dut, port)
        sig.value = int(v[key]) & ((1 << len(sig)) - 1)
    await Timer(1, unit="ns")
    return (dut.state_next_w.value.to_signed(), int(dut.state_next_x_pre.value),
            int(dut.state_next_x_post.value))


def vector(dut, rng, rule, bounds):
    wb, tb, ab, db = (int(getattr(dut, k).value) for k in ("W_BITS", "T_BITS", "A_BITS",
                                                             "D_BITS"))
    w_lo, w_hi = -(1 << (wb - 1)), (1 << (wb - 1)) - 1
    lo, hi = sorted((rng.randint(w_lo, w_hi), rng.randint(w_lo, w_hi)))
    return {"w": rng.choice([w_lo, w_hi, rng.randint(w_lo, w_hi)]),
            "x_pre": rng.choice([0, (1 << tb) - 1, rng.randint(0, (1 << tb) - 1)]),
            "x_post": rng.choice([0, (1 << tb) - 1, rng.randint(0, (1 << tb) - 1)]),
            "pre": rng.randint(0, 1), "post": rng.randint(0, 1),
            "plastic": rng.random() < 0.85, "nearest": rule == "nearest",
            "soft": bounds == "soft",
            "pre_decay": rng.choice([0, 1 << db, rng.randint(0, 1 << db)]),
            "post_decay": rng.choice([0, 1 << db, rng.randint(0, 1 << db)]),
            "a_plus": rng.choice([0, (1 << ab) - 1, rng.randint(0, 1 << 14)]),
            "a_minus": rng.choice([0, (1 << ab) - 1, rng.randint(0, 1 << 14)]),
            "w_min": lo, "w_max": hi}


@cocotb.test()
@cocotb.parametrize(rule=["all_pairs", "nearest"], bounds=["hard", "soft"])
async def synapse_matches_stdp_step(dut, rule, bounds):
    rng = random.Random(f"{rule}-{bounds}")
    q = _q(dut)
    changed = 0
    for n in range(1500):
        v = vector(dut, rng, rule, bounds)
        got, want = await apply(dut, v), reference(q, v)
        assert got == want, f"vector {n}: {v}\n rtl {got}\n ref {want}"
        changed += got[0] != v["w"]
    assert changed > 300  # the weights really moved
