"""The spike with a surrogate gradient: the exact Heaviside forward, a smooth derivative backward.

``S(x) = 1 if x >= 0 else 0`` with ``x = v - threshold`` in real units (the fixed-point
training arithmetic multiplies its integer difference by the LSB first, so one slope means the
same in both arithmetics). The backward pass replaces ``dS/dx`` (a Dirac pulse) by one of these
functions of ``x``, with slope ``k`` (docs/training.md):

=====================  ==========================================  =========
name                   ``dS/dx``                                   default k
=====================  ==========================================  =========
``fast_sigmoid``       ``1 / (1 + k|x|)^2`` (SuperSpike)           25
``arctan``             ``(k/2) / (1 + (pi/2 * k * x)^2)``          2
``triangle``           ``k * max(0, 1 - k|x|)``                    1
``straight_through``   ``k`` (constant)                            1
=====================  ==========================================  =========

``fast_sigmoid`` and ``arctan`` are snntorch's ``surrogate.fast_sigmoid(slope)`` and
``surrogate.atan(alpha)`` with the same defaults. The C training kernel
(``snnkit/training/_train_kernels.c``) evaluates the same four formulas, in the same order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import NetworkError

DEFAULT_SLOPE = {"fast_sigmoid": 25.0, "arctan": 2.0, "triangle": 1.0, "straight_through": 1.0}
KIND = {name: k for k, name in enumerate(DEFAULT_SLOPE)}  # the C kernel's surrogate code


@dataclass(frozen=True)
class Surrogate:
    """A surrogate gradient: ``name`` (see the module docstring) and its slope ``k``."""

    name: str = "fast_sigmoid"
    slope: float | None = None  # None: the name's default

    def __post_init__(self):
        if self.name not in DEFAULT_SLOPE:
            raise NetworkError(f"surrogate: unknown surrogate {self.name!r}; choose from "
                               f"{sorted(DEFAULT_SLOPE)} (the hard threshold alone has no "
                               f"gradient)")
        k = DEFAULT_SLOPE[self.name] if self.slope is None else self.slope
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not math.isfinite(k) \
                or k <= 0:
            raise NetworkError(f"surrogate.slope: must be a positive number, got {self.slope!r}")
        object.__setattr__(self, "slope", float(k))

    @property
    def kind(self) -> int:
        return KIND[self.name]

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """``dS/dx`` at ``x``."""
        k = self.slope
        if self.name == "fast_sigmoid":
            a = 1 + k * x.abs()
            return 1 / (a * a)
        if self.name == "arctan":
            a = (math.pi / 2 * k) * x
            return (k / 2) / (1 + a * a)
        if self.name == "triangle":
            return k * (1 - k * x.abs()).clamp_min(0)
        return torch.full_like(x, k)

    def spike(self, x: torch.Tensor) -> torch.Tensor:
        """``1.0`` where ``x >= 0``, else ``0.0`` (x's dtype), with this surrogate's gradient."""
        return _Spike.apply(x, self)


class _Spike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, sg):
        ctx.save_for_backward(x)
        ctx.sg = sg
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.sg.grad(x), None


def surrogate(spec="fast_sigmoid", slope: float | None = None) -> Surrogate:
    """A :class:`Surrogate` from a name (with ``slope``) or a Surrogate.

    Raises
    ------
    NetworkError : unknown name, a non-positive slope, or a slope given twice
    """
    if isinstance(spec, Surrogate):
        if slope is not None and slope != spec.slope:
            raise NetworkError("surrogate: slope given both in the Surrogate and as slope=")
        return spec
    if not isinstance(spec, str):
        raise NetworkError(f"surrogate: expected a name or snnkit.surrogate.Surrogate, got "
                           f"{type(spec).__name__}")
    return Surrogate(spec, slope)
