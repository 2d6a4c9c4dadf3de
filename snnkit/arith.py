"""The two arithmetics a step function can run in: real (float) and the hardware's integers.

Step functions in :mod:`snnkit.neurons` and :mod:`snnkit.plasticity` are written once against
this small interface, so the float simulator, the fixed-point simulator and the RTL
scoreboard share one set of equations. The integer rules are specified in docs/fixed-point.md.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Arith(Protocol):
    """What a step function may ask of its arithmetic (FloatArith and FixedArith have it, and
    the training arithmetics of :mod:`snnkit.training.arith`)."""

    trace_one: float | int  # an STDP trace's 1.0

    def sat(self, x: torch.Tensor) -> torch.Tensor:
        """Saturate a state (v, i, theta) to its width."""

    def decay(self, x: torch.Tensor, d) -> torch.Tensor:
        """``x`` times the per-step decay ``d``."""

    def trace_sat(self, x: torch.Tensor) -> torch.Tensor:
        """Saturate an STDP trace to its width."""

    def scale(self, x: torch.Tensor, a, shift: int) -> torch.Tensor:
        """``x * a``, rounded back by ``shift`` fractional bits in integers."""

    def spike(self, v: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
        """The spike ``v >= thr``: bool, or 0/1 floats carrying a surrogate gradient."""

    def fired(self, spk: torch.Tensor) -> torch.Tensor:
        """The spike as a bool mask without gradient (refractory counter, theta)."""

    def where(self, spk: torch.Tensor, a, b) -> torch.Tensor:
        """``a`` where the neuron spiked, else ``b`` (the reset)."""


class _ExactSpike:
    """The spike of the simulators: the exact comparison, a bool tensor.

    :func:`snnkit.neurons.neuron_step` reads the spike only through these three methods, so a
    training arithmetic (:mod:`snnkit.training.arith`) can return the same 0/1 values as a
    float tensor whose gradient is a surrogate (docs/training.md) without a second neuron
    model.
    """

    @staticmethod
    def spike(v, thr):
        """``v >= thr``, exact (docs/fixed-point.md, "Comparison")."""
        return v >= thr

    @staticmethod
    def fired(spk):
        """The spike as a bool mask, for the state updates (refractory counter, theta)."""
        return spk

    @staticmethod
    def where(spk, a, b):
        """``a`` where the neuron spiked, else ``b`` (the reset)."""
        return torch.where(spk, a, b)


class FloatArith(_ExactSpike):
    """Plain real arithmetic: no saturation, decays are multiplications."""

    trace_one = 1.0

    def sat(self, x):  # state saturation
        return x

    def decay(self, x, d):
        return x * d

    def trace_sat(self, x):
        return x

    def scale(self, x, a, shift):
        """``x * a`` (``shift`` is only meaningful for the integer arithmetic)."""
        return x * a


class FixedArith(_ExactSpike):
    """Two's-complement integers in integer tensors (int32 where no intermediate can overflow
    it, else int64; the simulator chooses), saturating to the widths of the format ``q``.

    ``decay(x, d) = (x*d + 2**(D-1)) >> D`` (round half up, arithmetic shift) with ``d`` an
    unsigned integer in ``[0, 2**D]``, ``2**D`` meaning 1.0.
    """

    def __init__(self, q):
        self.lo, self.hi = -(1 << (q.state_bits - 1)), (1 << (q.state_bits - 1)) - 1
        self.t_hi = (1 << q.trace_bits) - 1
        self.trace_one = 1 << q.trace_frac_bits
        self.D = q.decay_bits

    def sat(self, x):
        return x.clamp(self.lo, self.hi)

    def decay(self, x, d):
        return (x * d + (1 << (self.D - 1))) >> self.D

    def trace_sat(self, x):
        return x.clamp(0, self.t_hi)

    @staticmethod
    def scale(x, a, shift):
        """``round_half_up(x * a / 2**shift)``, exact in int64."""
        if shift == 0:
            return x * a
        return (x * a + (1 << (shift - 1))) >> shift


def _canonical_int8(t: torch.Tensor) -> torch.Tensor:
    """An int8 copy with row-major strides even for size-1 dimensions (a [1, n] view with
    strides (1, 1) counts as contiguous, and oneDNN reads its leading dimension wrong)."""
    out = torch.empty(t.shape, dtype=torch.int8, device=t.device)
    out.copy_(t)
    return out


def int_matmul(x: torch.Tensor, weight_t: torch.Tensor, bound: int,
               out_dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """Exact ``x @ weight_t`` for integer (or spike) tensors, on the fastest exact kernel.

    ``bound`` is an upper bound of any partial sum's magnitude. Spikes times 8-bit weights on
    the CPU use int8 x int8 -> int32 (AMX/VNNI); otherwise float32 is exact below 2**24 and
    float64 below 2**53; int64 beyond that (slow, still exact). ``out_dtype`` must hold
    ``bound``.
    """
    if (x.dtype == torch.bool and x.device.type == "cpu" and bound < (1 << 31)
            and x.shape[0] > 16 and int(weight_t.min()) >= -128 and int(weight_t.max()) <= 127):
        try:  # fresh buffers: _int_mm trusts strides that .contiguous() may leave odd
            return torch._int_mm(_canonical_int8(x), _canonical_int8(weight_t)).to(out_dtype)
        except RuntimeError:  # shape or build without the kernel: fall through
            pass
    if bound < (1 << 24):
        dt = torch.float32
    elif bound < (1 << 53):
        dt = torch.float64
    else:
        return (x.to(torch.int64) @ weight_t.to(torch.int64)).to(out_dtype)
    return (x.to(dt) @ weight_t.to(dt)).round().to(out_dtype)
