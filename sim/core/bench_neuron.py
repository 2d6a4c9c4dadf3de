"""cocotb bench of one neuron update of the core: sim/core/neuron_cell.v (3 x hdl/snn_decay.v
feeding hdl/snn_integrate.v, then hdl/snn_fire.v), combinational.

Reference model: snnkit.neurons.neuron_step in FixedArith, the fixed-point simulator's own
step function; every test drives vectors, then compares spike, v, i, refractory and theta.
"""

import random

import cocotb
import torch
from cocotb.triggers import Timer

from snnkit.arith import FixedArith
from snnkit.network import Quantization
from snnkit.neurons import NeuronParams, NeuronState, neuron_step


def _q(dut) -> Quantization:
    return Quantization(state_bits=int(dut.S_BITS.value), decay_bits=int(dut.D_BITS.value),
                        weight_bits=8)


def reference(q, vec):
    t = {k: torch.tensor([v]) for k, v in vec.items() if k not in ("subtract", "refractory")}
    p = NeuronParams(alpha=t["alpha"], beta=t["beta"], threshold=t["threshold"],
                     v_reset=t["v_reset"], bias=t["bias"], adapt_plus=t["adapt_plus"],
                     adapt_decay=t["adapt_decay"], subtract=bool(vec["subtract"]),
                     refractory=vec["refractory"], adaptive=True)
    s = NeuronState(v=t["v"][None], i=t["i"][None], refrac=t["refrac"][None].to(torch.int32),
                    theta=t["theta"][None])
    spk, n = neuron_step(t["x"][None], s, p, FixedArith(q))
    return (int(spk[0, 0]), int(n.v[0, 0]), int(n.i[0, 0]), int(n.refrac[0, 0]),
            int(n.theta[0, 0]))


async def apply(dut, vec):
    ports = {"state_v": "v", "state_i": "i", "state_refrac": "refrac", "state_theta": "theta",
             "event_x": "x", "param_alpha": "alpha", "param_beta": "beta",
             "param_adapt_decay": "adapt_decay", "param_threshold": "threshold",
             "param_v_reset": "v_reset", "param_bias": "bias", "param_adapt_plus": "adapt_plus",
             "param_refractory": "refractory", "param_subtract": "subtract"}
    for port, key in ports.items():
        sig = getattr(dut, port)
        sig.value = vec[key] & ((1 << len(sig)) - 1)
    await Timer(1, unit="ns")

    def signed(sig):
        return sig.value.to_signed()

    return (int(dut.spike.value), signed(dut.state_next_v), signed(dut.state_next_i),
            int(dut.state_next_refrac.value), signed(dut.state_next_theta))


def vector(dut, rng, case):
    sb, db = int(dut.S_BITS.value), int(dut.D_BITS.value)
    hi, lo, one = (1 << (sb - 1)) - 1, -(1 << (sb - 1)), 1 << db
    acc_hi = (1 << (int(dut.ACC_W.value) - 1)) - 1

    def st():
        return rng.choice([lo, hi, 0, rng.randint(lo, hi), rng.randint(-300, 300)])

    def dec():
        return rng.choice([0, one, rng.randint(0, one)])

    vec = {"v": st(), "i": st(), "theta": max(0, st()), "refrac": rng.choice([0, 0, 1, 5]),
           "x": rng.choice([rng.randint(-acc_hi - 1, acc_hi), rng.randint(-500, 500)]),
           "alpha": dec(), "beta": dec(), "adapt_decay": dec(), "threshold": st(),
           "v_reset": st(), "bias": st(), "adapt_plus": max(0, st()),
           "refractory": rng.randint(0, 255), "subtract": rng.randint(0, 1)}
    # reachable states only: the counter never exceeds the population's refractory period
    vec["refrac"] = min(vec["refrac"], vec["refractory"])
    if case == "saturation":
        vec.update(x=rng.choice([-acc_hi - 1, acc_hi]), i=rng.choice([lo, hi]),
                   bias=rng.choice([lo, hi]), v=rng.choice([lo, hi]), alpha=one, beta=one)
    elif case == "refractory":
        vec.update(refractory=rng.randint(1, 255))
        vec.update(refrac=rng.randint(1, vec["refractory"]))
    elif case == "reset":
        vec.update(refrac=0, threshold=rng.randint(lo, 0), theta=rng.randint(0, 100))
    elif case == "adaptive":
        vec.update(refrac=0, adapt_plus=rng.randint(0, hi), theta=rng.randint(0, hi))
    return vec


@cocotb.test()
@cocotb.parametrize(case=["random", "saturation", "refractory", "reset", "adaptive"])
async def neuron_matches_neuron_step(dut, case):
    rng = random.Random(case)
    q = _q(dut)
    spikes = 0
    for n in range(1500):
        vec = vector(dut, rng, case)
        got, want = await apply(dut, vec), reference(q, vec)
        assert got == want, f"vector {n}: {vec}\n rtl {got}\n ref {want}"
        spikes += got[0]
    if case == "reset":
        assert spikes > 100  # the case is about spiking neurons
    if case == "refractory":
        assert spikes == 0
