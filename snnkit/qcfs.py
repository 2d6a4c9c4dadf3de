"""The QCFS activation (quantisation-clip-floor-shift): a trainable ReLU replacement whose
levels an IF neuron reproduces exactly, what a lossless conversion needs (docs/convert.md)."""

from __future__ import annotations

import torch
from torch import nn

from .errors import NetworkError


class _FloorSTE(torch.autograd.Function):
    """floor() with a straight-through gradient, for quantisation-aware training."""

    @staticmethod
    def forward(ctx, x):
        return torch.floor(x)

    @staticmethod
    def backward(ctx, g):
        return g


class QCFS(nn.Module):
    """Quantisation-clip-floor-shift activation: ``lam * clip(floor(x*L/lam + 0.5), 0, L) / L``.

    A ReLU replacement with ``levels`` (L) steps up to a trainable clip value ``lam``; an IF
    neuron with threshold ``lam/L`` and membrane started at half the threshold emits exactly
    ``clip(floor(x*L/lam + 0.5), 0, L)`` spikes for a total input ``x*L``.

    Parameters
    ----------
    levels : number of quantisation steps L (>= 1)
    threshold : initial clip value lam (> 0)
    """

    def __init__(self, levels: int, threshold: float = 1.0):
        super().__init__()
        if not isinstance(levels, int) or levels < 1:
            raise NetworkError(f"QCFS.levels: must be an integer >= 1, got {levels!r}")
        if not threshold > 0:
            raise NetworkError(f"QCFS.threshold: must be > 0, got {threshold!r}")
        self.levels = levels
        self.threshold = nn.Parameter(torch.tensor(float(threshold)))

    def forward(self, x):
        lam = self.threshold
        q = _FloorSTE.apply(x * self.levels / lam + 0.5)
        return q.clamp(0, self.levels) * (lam / self.levels)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, threshold={float(self.threshold):.4g}"
