"""The training arithmetics: snnkit.arith's two, differentiable, with a surrogate spike.

:func:`snnkit.neurons.neuron_step` and :func:`snnkit.plasticity.stdp_step` run on these
unchanged, so training computes the simulators' update:

* :class:`TrainFloatArith` is :class:`~snnkit.arith.FloatArith` (real values, float32);
* :class:`TrainFixedArith` is :class:`~snnkit.arith.FixedArith`, the integers of
  docs/fixed-point.md held in float64 tensors (exact below 2**53): saturation is a clamp
  (gradient 1 inside the range, 0 outside), the decay's and the scaled product's rounding
  shift is a floor whose gradient passes straight through.

In both, :meth:`spike` is the exact comparison returned as 0.0 / 1.0 with the surrogate's
gradient, and :meth:`where` (the reset) does not pass gradient through the spike unless
``detach_reset=False`` (snntorch's and norse's default is the same detached reset).
"""

from __future__ import annotations

import torch

from ..surrogate import Surrogate


class _FloorSTE(torch.autograd.Function):
    """floor() whose gradient passes straight through."""

    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, g):
        return g


class _RoundSTE(torch.autograd.Function):
    """Round half away from zero (quantize.encode's rule) with a straight-through gradient."""

    @staticmethod
    def forward(ctx, x):
        return torch.trunc(x + torch.copysign(torch.full_like(x, 0.5), x))

    @staticmethod
    def backward(ctx, g):
        return g


def floor_ste(x: torch.Tensor) -> torch.Tensor:
    return _FloorSTE.apply(x)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    return _RoundSTE.apply(x)


class TrainFloatArith:
    """Real arithmetic (no saturation, decays are products) with a surrogate spike."""

    trace_one = 1.0
    lsb = 1.0

    def __init__(self, surrogate: Surrogate, detach_reset: bool = True):
        self.surrogate = surrogate
        self.detach_reset = detach_reset

    def sat(self, x):
        return x

    def decay(self, x, d):
        return x * d

    def trace_sat(self, x):
        return x

    def scale(self, x, a, shift):
        return x * a

    def spike(self, v, thr):
        """``v >= thr`` as 0.0 / 1.0, with the surrogate of ``(v - thr) * lsb`` as gradient."""
        x = v - thr
        return self.surrogate.spike(x * self.lsb if self.lsb != 1.0 else x)

    @staticmethod
    def fired(spk):
        return spk.detach() != 0

    def where(self, spk, a, b):
        out = torch.where(self.fired(spk), a, b)
        if not self.detach_reset:  # + 0 forward; d/dspike = a - b
            out = out + (spk - spk.detach()) * (a - b)
        return out


class TrainFixedArith(TrainFloatArith):
    """docs/fixed-point.md's integers in float64 tensors, with straight-through rounding."""


    def __init__(self, q, surrogate: Surrogate, detach_reset: bool = True):
        super().__init__(surrogate, detach_reset)
        self.q = q
        self.lo, self.hi = -(1 << (q.state_bits - 1)), (1 << (q.state_bits - 1)) - 1
        self.t_hi = (1 << q.trace_bits) - 1
        self.trace_one = float(1 << q.trace_frac_bits)
        self.D = q.decay_bits
        self.lsb = 2.0 ** -q.frac_bits
        self._half, self._inv = float(1 << (self.D - 1)), 2.0 ** -self.D

    def sat(self, x):
        return x.clamp(self.lo, self.hi)

    def decay(self, x, d):
        return floor_ste((x * d + self._half) * self._inv)

    def trace_sat(self, x):
        return x.clamp(0, self.t_hi)

    @staticmethod
    def scale(x, a, shift):
        if shift == 0:
            return x * a
        return floor_ste((x * a + float(1 << (shift - 1))) * 2.0 ** -shift)
