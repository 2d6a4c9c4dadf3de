"""The neuron update, written once for every model and both arithmetics.

Every model is a special case of the general current-based LIF neuron (docs/fixed-point.md,
"One time step"): ``LIF`` has ``alpha = 0`` (the current is just this step's input), ``IF``
also has ``beta = 1`` (no leak).
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class NeuronParams(NamedTuple):
    """Per-neuron tensors ``[n]`` (float, or int64 in fixed point) plus two per-population flags."""

    alpha: torch.Tensor  # synaptic current decay per step
    beta: torch.Tensor  # membrane decay per step
    threshold: torch.Tensor
    v_reset: torch.Tensor
    bias: torch.Tensor
    adapt_plus: torch.Tensor  # threshold increase per spike
    adapt_decay: torch.Tensor  # decay of the threshold increase per step
    subtract: bool  # reset by subtraction (True) or to v_reset (False)
    refractory: int  # steps without integration after a spike
    adaptive: bool  # False when adapt_plus == 0 everywhere: theta stays 0, skip its update


class NeuronState(NamedTuple):
    """Per-neuron state ``[batch, n]``."""

    v: torch.Tensor  # membrane potential
    i: torch.Tensor  # synaptic current
    refrac: torch.Tensor  # remaining refractory steps (int)
    theta: torch.Tensor  # adaptive part of the threshold


def initial_state(v_init: torch.Tensor, batch: int) -> NeuronState:
    v = v_init.expand(batch, -1).clone()
    zero = torch.zeros_like(v)
    return NeuronState(v, zero, torch.zeros(v.shape, dtype=torch.int32, device=v.device),
                       zero.clone())


def neuron_step(x_in: torch.Tensor, s: NeuronState, p: NeuronParams, ar):
    """Advance one time step.

    Parameters
    ----------
    x_in : synaptic input arriving this step, ``[batch, n]`` (exact sum of weights)
    s : state after the previous step
    p : parameters
    ar : :class:`~snnkit.arith.FloatArith` or :class:`~snnkit.arith.FixedArith`

    Returns
    -------
    (spikes as bool ``[batch, n]``, new state)
    """
    i = ar.sat(ar.decay(s.i, p.alpha) + x_in)  # 1. synaptic current
    active = s.refrac == 0  # 2. refractory neurons hold v
    v = torch.where(active, ar.sat(ar.decay(s.v, p.beta) + i + p.bias), s.v)
    thr = p.threshold + s.theta  # 3. compare (exact, no saturation)
    spk = active & (v >= thr)
    v_after = ar.sat(v - thr) if p.subtract else p.v_reset.expand_as(v)  # 4. reset
    v = torch.where(spk, v_after, v)
    refrac = torch.where(spk, p.refractory, (s.refrac - 1).clamp_min(0)).to(s.refrac.dtype)
    theta = s.theta  # 5. homeostasis
    if p.adaptive:
        theta = ar.sat(ar.decay(s.theta, p.adapt_decay) + spk * p.adapt_plus)
    return spk, NeuronState(v, i, refrac, theta)
