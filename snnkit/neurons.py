"""The neuron update, written once for every model and both arithmetics.

Every model is a special case of the general current-based LIF neuron (docs/fixed-point.md,
"One time step"): ``LIF`` has ``alpha = 0`` (the current is just this step's input), ``IF``
also has ``beta = 1`` (no leak). snntorch's delayed reset (``reset="delayed"``) is the reset by
subtraction plus the inputs :func:`delayed_reset_inputs` adds one (and, with a synaptic
current, two) steps after a spike: in real arithmetic exactly snntorch's membrane, in integers
exactly what the core computes with those inputs as self-synapses (:mod:`snnkit.lowering`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .arith import Arith

# the per-neuron tensors of NeuronParams, in order (the rest are per-population flags)
TENSOR_PARAMS = ("alpha", "beta", "threshold", "v_reset", "bias", "adapt_plus", "adapt_decay")


class NeuronParams(NamedTuple):
    """Per-neuron tensors ``[n]`` (float, or int in fixed point) plus per-population flags.

    The flags only let :func:`neuron_step` skip work whose result is known (a zero decay, a
    zero bias, no refractoriness, no adaptation); they never change the arithmetic.
    """

    alpha: torch.Tensor  # synaptic current decay per step
    beta: torch.Tensor  # membrane decay per step
    threshold: torch.Tensor
    v_reset: torch.Tensor
    bias: torch.Tensor
    adapt_plus: torch.Tensor  # threshold increase per spike
    adapt_decay: torch.Tensor  # decay of the threshold increase per step
    subtract: bool  # reset by subtraction (True) or to v_reset (False)
    refractory: int | torch.Tensor  # steps without integration after a spike: one number for
    # all, or per neuron (int32 [n]); 0 skips the counter
    adaptive: bool  # False when adapt_plus == 0 everywhere: theta stays 0
    has_alpha: bool = True  # False when alpha == 0 everywhere: i is this step's input
    has_bias: bool = True  # False when bias == 0 everywhere
    c1: torch.Tensor | None = None  # reset="delayed": input one step after a spike ...
    c2: torch.Tensor | None = None  # ... and two steps after (None: zero everywhere)


class NeuronState(NamedTuple):
    """Per-neuron state ``[batch, n]``."""

    v: torch.Tensor  # membrane potential
    i: torch.Tensor  # synaptic current
    refrac: torch.Tensor  # remaining refractory steps (int)
    theta: torch.Tensor  # adaptive part of the threshold
    s1: torch.Tensor | None = None  # spikes of the previous step (bool; reset="delayed") ...
    s2: torch.Tensor | None = None  # ... and of the one before


def initial_state(v_init: torch.Tensor, batch: int) -> NeuronState:
    v = v_init.expand(batch, -1).clone()
    zero = torch.zeros_like(v)
    none = torch.zeros(v.shape, dtype=torch.bool, device=v.device)
    return NeuronState(v=v, i=zero,
                       refrac=torch.zeros(v.shape, dtype=torch.int32, device=v.device),
                       theta=zero.clone(), s1=none, s2=none)


def delayed_reset_inputs(threshold: torch.Tensor, beta: torch.Tensor, alpha: torch.Tensor,
                         ar: Arith) -> tuple[torch.Tensor, torch.Tensor]:
    """The inputs ``(c1, c2)`` that ``reset="delayed"`` adds one and two steps after a spike.

    The neuron subtracts the threshold at once (as ``"subtract"``); ``c1 = decay(thr, beta) -
    thr`` one step later turns ``beta * (v - thr)`` into ``beta * v - thr`` (snntorch subtracts
    the threshold a step late and undecayed), and ``c2 = -decay(c1, alpha)`` two steps later
    takes back what the synaptic current kept of ``c1``. Both are 0 for IF (beta = 1) and
    ``c2`` is 0 without a synaptic current (alpha = 0).
    """
    c1 = ar.decay(threshold, beta) - threshold
    return c1, -ar.decay(c1, alpha)


def neuron_step(x_in: torch.Tensor, s: NeuronState, p: NeuronParams,
                ar: Arith) -> tuple[torch.Tensor, NeuronState]:
    """Advance one time step (docs/fixed-point.md, "One time step", items 2-8).

    Parameters
    ----------
    x_in : synaptic input arriving this step, ``[batch, n]`` (exact sum of weights)
    s : state after the previous step
    p : parameters
    ar : the arithmetic (:class:`~snnkit.arith.FloatArith` or
        :class:`~snnkit.arith.FixedArith`; for training, one of
        :mod:`snnkit.training.arith`, whose spike carries a surrogate gradient)

    Returns
    -------
    (spikes ``[batch, n]``: bool, or 0/1 floats from a training arithmetic; new state)
    """
    # 2. the delayed reset's inputs join the synaptic input (as self-synapses would)
    if p.c1 is not None:
        x_in = x_in + torch.where(s.s1, p.c1, 0)
    if p.c2 is not None:
        x_in = x_in + torch.where(s.s2, p.c2, 0)
    # 3. synaptic current (decay(i, 0) == 0 in both arithmetics)
    i = ar.sat(ar.decay(s.i, p.alpha) + x_in) if p.has_alpha else ar.sat(x_in)
    # 4. membrane: one saturation of the three-term sum; refractory neurons hold v
    v = ar.decay(s.v, p.beta) + i
    v = ar.sat(v + p.bias if p.has_bias else v)
    refractory = isinstance(p.refractory, torch.Tensor) or p.refractory != 0
    if refractory:
        active = s.refrac == 0
        v = torch.where(active, v, s.v)
    # 5. spike: exact comparison with the (adapted) threshold. The simulators' arithmetics
    #    return bool; the training ones 0/1 floats whose gradient is the surrogate
    thr = p.threshold + s.theta if p.adaptive else p.threshold
    spk = ar.spike(v, thr)
    if refractory:
        spk = spk * active  # bool * bool is the logical and
    fired = ar.fired(spk)  # bool, no gradient: what the state updates below read
    # 6. reset (training: the spike's gradient does not pass here unless asked, see ar.where)
    v = ar.where(spk, ar.sat(v - thr) if p.subtract else p.v_reset, v)
    # 7. refractory counter
    refrac = s.refrac
    if refractory:
        refrac = torch.where(fired, p.refractory, (s.refrac - 1).clamp_min(0)).to(s.refrac.dtype)
    # 8. homeostasis
    theta = s.theta
    if p.adaptive:
        theta = ar.sat(ar.decay(s.theta, p.adapt_decay) + fired * p.adapt_plus)
    return spk, NeuronState(v=v, i=i, refrac=refrac, theta=theta, s1=fired, s2=s.s1)
