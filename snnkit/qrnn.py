"""The quantised recurrent network (QRNN) that a recurrent conversion reproduces exactly.

A :class:`QRNN` is a ReLU RNN whose every activation is an integer *level*, computed from
integer weights: per element ``x_t`` of a sequence,

* optional per-element feature layers (``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d``: a CRNN),
* one or more recurrent layers ``c_t = Q(W_in s_t + W_rec c_{t-1} + b)``,
* after the last element, read-out layers on the last layer's levels (the last one is the
  output; the class is its highest level, ties to the lowest index),

with ``Q(u) = clip(floor(u + 1/2), 0, L)``: QCFS (:class:`snnkit.qcfs.QCFS`) written in level
units, so no clip value is needed. Every layer's weights are on a grid of ``1/th`` with ``th``
a power of two chosen so that the largest fits the hardware's signed ``weight_bits`` (times
the input code's largest multiplier on the first layer), so the whole network is integer
arithmetic: ``level = clip((a . s + c0 + th/2) >> log2(th), 0, L)``. Training sees the same
values with straight-through gradients (:meth:`QRNN.forward`); :meth:`QRNN.integers` is what
the converter builds the spiking network from and :meth:`QRNN.levels` the exact reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .errors import NetworkError

INPUT_CODES = ("binary", "split", "unary")
RECURRENT_INITS = ("normal", "orthogonal")
MAX_EXPONENT = 14  # th = 2**e LSB, e <= MAX_EXPONENT


class _STE(torch.autograd.Function):
    """``fn(x)`` forward, identity backward (straight-through estimator)."""

    @staticmethod
    def forward(ctx, x, fn):
        return fn(x)

    @staticmethod
    def backward(ctx, g):
        return g, None


def _level(u: torch.Tensor, levels: int, through: bool = False) -> torch.Tensor:
    """``clip(floor(u + 1/2), 0, L)`` with a straight-through floor; ``through``: the clip
    straight-through too (the output layer, so that a saturated class still learns)."""
    q = _STE.apply(u + 0.5, torch.floor)
    if through:
        return q + (q.clamp(0, levels) - q).detach()
    return q.clamp(0, levels)


def code_weights(code: str, input_levels: int) -> np.ndarray:
    """What each input neuron of one value adds to ``m`` when it fires: "binary" ``2**b`` for
    ``b < bit_length(K)``; "split" the same with the top bit replaced by neurons of half its
    weight (as many as ``K`` needs: one more neuron at most, the largest multiplier halved, so
    first-layer weights get twice the resolution); "unary" ``K`` ones."""
    k = int(input_levels)
    if code == "unary" or (code == "split" and k < 2):
        return np.ones(k, np.int64)
    bits = k.bit_length()
    if code == "binary":
        return 1 << np.arange(bits, dtype=np.int64)
    top = 1 << (bits - 2)  # split: bits 0 .. bits-3, then m >> (bits-2) units of weight top
    return np.concatenate([1 << np.arange(bits - 2, dtype=np.int64),
                           np.full(k >> (bits - 2), top, np.int64)])


def code_spikes(code: str, input_levels: int, m: np.ndarray) -> np.ndarray:
    """Input spikes ``[..., neurons]`` (bool) of integers ``m`` in ``0 .. K``, in the order of
    :func:`code_weights` (their weighted sum is ``m``)."""
    w = code_weights(code, input_levels)
    m = np.asarray(m, np.int64)[..., None]
    if code == "unary" or (w == 1).all():
        return np.arange(len(w)) < m
    if code == "binary":
        return ((m >> np.arange(len(w))) & 1).astype(bool)
    low = int((w < w[-1]).sum())  # split: the low bits of m, then the top units in unary
    return np.concatenate([((m >> np.arange(low)) & 1).astype(bool),
                           np.arange(len(w) - low) < (m >> low)], -1)


def input_multiplier(code: str, input_levels: int) -> int:
    """Largest factor the input code puts on a first-layer weight (one synapse carries
    ``weight * code_weights(...)[i]``)."""
    return int(code_weights(code, input_levels).max())


def input_integers(x, input_shape: tuple, input_levels: int) -> torch.Tensor:
    """``m = round(x * K)`` (float64) of sequences ``x`` ([batch, T, *input_shape], values in
    [0, 1] on the grid ``1/K``).

    Raises
    ------
    NetworkError : a wrong shape, or values outside [0, 1] or off the grid ``1/K``
    """
    x = x.detach().cpu() if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))
    shape = tuple(input_shape)
    if x.dim() != 2 + len(shape) or tuple(x.shape[2:]) != shape:
        raise NetworkError(f"x: expected [batch, T, {', '.join(map(str, shape))}] sequences, "
                           f"got shape {tuple(x.shape)}")
    x = x.double()
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise NetworkError("x: contains NaN or inf")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise NetworkError(f"x: values must be in [0, 1], got [{float(x.min()):g}, "
                           f"{float(x.max()):g}]")
    m = torch.round(x * input_levels)
    if not torch.allclose(m / input_levels, x, atol=1e-6, rtol=0):
        raise NetworkError(f"x: values must be multiples of 1/{input_levels} (input_levels); "
                           f"quantise the data first")
    return m


@dataclass
class IntLayer:
    """One QRNN layer in integers: ``level = clip((w . s + w_rec . c_prev + bias + th/2) //
    th, 0, levels)``."""

    kind: str  # "feature", "recurrent" or "readout"
    weight: np.ndarray  # int64 [out, in] (convolutions as their dense matrix)
    mask: np.ndarray | None  # bool [out, in] structural connectivity (convolutions); None = all
    recurrent: np.ndarray | None  # int64 [out, out] (recurrent layers)
    bias: np.ndarray  # int64 [out]
    th: int  # threshold, a power of two (LSB)
    levels: int  # L
    shape: tuple  # output shape of one element (without batch)


class _QLayer(nn.Module):
    """One population of the QRNN: an affine map in level units, then ``Q``."""

    def __init__(self, kind: str, op: nn.Module, levels: int, in_shape: tuple,
                 recurrent: int = 0, mult: int = 1):
        super().__init__()
        if not isinstance(levels, int) or levels < 1:
            raise NetworkError(f"levels: must be an integer >= 1, got {levels!r}")
        self.kind, self.op, self.levels, self.mult = kind, op, levels, mult
        self.in_shape = tuple(in_shape)
        self.rec = nn.Parameter(torch.zeros(recurrent, recurrent)) if recurrent else None
        with torch.no_grad():
            self.out_shape = tuple(op(torch.zeros((1,) + self.in_shape)).shape[1:])

    def exponent(self, wmax: int) -> int:
        """``log2(th)``: the largest grid on which every weight fits ``wmax``."""
        m = float(self.op.weight.detach().abs().max()) * self.mult
        if self.rec is not None:
            m = max(m, float(self.rec.detach().abs().max()))
        if m <= 0:
            return MAX_EXPONENT
        return int(min(MAX_EXPONENT, max(1, math.floor(math.log2(wmax / m)))))

    def quantised(self, wmax: int):
        """``(weight, recurrent, bias)`` on the grid ``1/th`` (straight-through), and ``th``."""
        th = float(1 << self.exponent(wmax))

        def q(w, lim):
            return _STE.apply(w * th, torch.round).clamp(-lim, lim) / th

        w = q(self.op.weight, wmax // self.mult)
        r = q(self.rec, wmax) if self.rec is not None else None
        b = _STE.apply(self.op.bias * th, torch.round) / th
        return w, r, b, th

    def step(self, s: torch.Tensor, c_prev, wmax: int, exact: bool = True,
             through: bool = False, noise: float = 0.0) -> torch.Tensor:
        if exact:
            w, r, b, _ = self.quantised(wmax)
        else:
            w, r, b = self.op.weight, self.rec, self.op.bias
        u = self._affine(s, w, b)
        if r is not None:
            u = u + c_prev @ r.T
        if not exact:
            if noise and self.training:  # the error that rounding will add, U(-1/2, 1/2)
                u = u + (torch.rand_like(u) - 0.5) * noise
            c = u.clamp(0, self.levels)
            return u + (c - u).detach() if through else c
        return _level(u, self.levels, through)

    def _affine(self, s, w, b):
        op = self.op
        if isinstance(op, nn.Linear):
            return nn.functional.linear(s, w, b)
        s = s.reshape((len(s),) + self.in_shape)
        f = nn.functional.conv1d if isinstance(op, nn.Conv1d) else nn.functional.conv2d
        return f(s, w, b, op.stride, op.padding, op.dilation, op.groups).flatten(1)

    def integers(self, wmax: int) -> IntLayer:
        with torch.no_grad():
            w, r, b, th = self.quantised(wmax)
            w, b = w.double(), b.double()
            n = int(np.prod(self.in_shape))
            eye = torch.eye(n, dtype=torch.float64)
            dense = (self._affine(eye, w, torch.zeros_like(b)).T * th).round()
            mask = None
            if not isinstance(self.op, nn.Linear):
                ones = self._affine(eye, torch.ones_like(w), torch.zeros_like(b)).T
                mask = (ones != 0).numpy()
                mask = None if mask.all() else mask
            rec = None if r is None else (r.double() * th).round().long().numpy()
            bias = self._affine(eye[:1] * 0, torch.zeros_like(w), b)[0]  # per unit
            return IntLayer(self.kind, dense.long().numpy(), mask, rec,
                            (bias * th).round().long().numpy(), int(th), self.levels,
                            self.out_shape)


def _per_layer(value, default: int, n: int, label: str) -> list[int]:
    if value is None:
        return [int(default)] * n
    out = [value] * n if isinstance(value, (int, np.integer)) else list(value)
    if len(out) != n or any(not isinstance(v, (int, np.integer)) or v < 1 for v in out):
        raise NetworkError(f"{label}: expected one integer >= 1 per layer ({n}), got {value!r}")
    return [int(v) for v in out]


def _check_op(op, where: str) -> None:
    if not isinstance(op, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        raise NetworkError(f"{where}: a QRNN feature layer must be nn.Linear, nn.Conv1d or "
                           f"nn.Conv2d, got {type(op).__name__}")
    if op.bias is None:
        raise NetworkError(f"{where}: needs a bias (bias=True); set it to zero if unused")


class QRNN(nn.Module):
    """A quantised ReLU RNN for sequence classification, trainable in torch and convertible
    without error to a spiking network (docs/convert.md, "Recurrent networks").

    Parameters
    ----------
    input_shape : shape of one sequence element, e.g. ``(8,)`` (a digits row) or ``(1, 8)``
        for a ``Conv1d`` feature layer
    hidden : sizes of the recurrent layers, e.g. ``48`` or ``[64, 64]``
    outputs : classes
    levels : levels ``L`` of the recurrent layers (an int, or one per layer)
    output_levels : levels of the output layer
    features : optional per-element layers before the recurrence (``nn.Linear``, ``nn.Conv1d``,
        ``nn.Conv2d``, with bias), each followed by ``Q`` (a CRNN)
    readout : sizes of hidden read-out layers between the last recurrent layer and the output
    feature_levels, readout_levels : levels of those layers (an int, or one per layer;
        default: the first / last recurrent layer's)
    input_levels : ``K``: inputs are in [0, 1] on the grid ``1/K`` (digits: 16), sent as the
        integers ``m = round(x * K)``
    input_code : how ``m`` reaches the network in one step: "binary" (``bit_length(K)`` input
        neurons per value, bit ``b`` weighted ``2**b``), "split" (binary with the top bit sent
        as neurons of half its weight: for ``K = 16`` weights 1, 2, 4, 8, 8, so first-layer
        weights get twice the resolution of "binary" for the same 5 neurons) or "unary" (``K``
        neurons, ``m`` fire; the finest first-layer weights); see :func:`code_weights`
    weight_bits : signed width of a synapse's weight on the hardware (8)
    recurrent_init : the recurrent weights' start: "normal" (``N(0, 1/(h L))``, spectral
        radius about ``1/sqrt(L)``) or "orthogonal" (radius 1 in level units: a state neither
        fades nor grows at the start, which long sequences, e.g. 64 pixels, need)

    Training: ``exact = False`` is the float model (real weights, ``clip(u, 0, L)``) for
    pre-training; while it trains, ``U(-noise/2, noise/2)`` (``noise``, default 1) is added to
    every pre-activation, the error that rounding will make, so the weights it learns survive
    quantisation. ``exact = True`` (default) is the QRNN, fine-tuned with straight-through
    gradients. :func:`snnkit.datasets.fit_qrnn` trains either.

    Raises
    ------
    NetworkError : bad sizes, levels or codes, unsupported feature layers
    """

    def __init__(self, input_shape, hidden, outputs: int, levels=4, output_levels: int = 4,
                 features=(), readout=(), feature_levels=None, readout_levels=None,
                 input_levels: int = 16, input_code: str = "binary", weight_bits: int = 8,
                 seed: int | None = None, recurrent_init: str = "normal"):
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        shape = (int(input_shape),) if isinstance(input_shape, (int, np.integer)) \
            else tuple(int(s) for s in input_shape)
        hidden = [hidden] if isinstance(hidden, (int, np.integer)) else list(hidden)
        levels = [levels] * len(hidden) if isinstance(levels, (int, np.integer)) else list(levels)
        if not hidden or any(int(h) < 1 for h in hidden) or len(levels) != len(hidden):
            raise NetworkError(f"hidden: expected one or more positive sizes with one levels "
                               f"value each, got hidden={hidden!r}, levels={levels!r}")
        if recurrent_init not in RECURRENT_INITS:
            raise NetworkError(f"recurrent_init: must be one of {RECURRENT_INITS}, got "
                               f"{recurrent_init!r}")
        if input_code not in INPUT_CODES:
            raise NetworkError(f"input_code: must be one of {INPUT_CODES}, got {input_code!r}")
        if not isinstance(input_levels, int) or input_levels < 1:
            raise NetworkError(f"input_levels: must be an integer >= 1, got {input_levels!r}")
        if not isinstance(weight_bits, int) or not 2 <= weight_bits <= 16:
            raise NetworkError(f"weight_bits: must be an integer in [2, 16], got {weight_bits!r}")
        self.input_shape, self.input_levels, self.input_code = shape, input_levels, input_code
        self.weight_bits, self.outputs = weight_bits, int(outputs)
        self.exact = True  # False: real weights and clip(u, 0, L), for pre-training
        # pre-training (exact False, train mode) adds U(-noise/2, noise/2) to every
        # pre-activation: the float model learns with the rounding error Q will make, so the
        # QRNN starts near its accuracy (row-wise digits: 96-97% instead of 93-95% before QAT)
        self.noise = 1.0
        mult = input_multiplier(input_code, input_levels)
        self.features, self.rnn, self.readout = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        flevels = _per_layer(feature_levels, levels[0], len(features), "feature_levels")
        rlevels = _per_layer(readout_levels, levels[-1], len(readout), "readout_levels")
        in_max = float(input_levels)  # largest input level of the next layer
        for k, op in enumerate(features):
            _check_op(op, f"features[{k}]")
            layer = _QLayer("feature", op, flevels[k], shape, 0, mult)
            with torch.no_grad():  # pre-activations of a few levels at the start
                op.weight.mul_(flevels[k] / in_max)
                op.bias.fill_(0.5)
            self.features.append(layer)
            shape, mult, in_max = layer.out_shape, 1, float(flevels[k])
        n = int(np.prod(shape))
        for h, lv in zip(hidden, levels):
            layer = _QLayer("recurrent", nn.Linear(n, int(h)), int(lv), (n,), int(h), mult)
            with torch.no_grad():
                layer.op.weight.normal_(0, 1.5 / in_max / n ** 0.5)
                if recurrent_init == "orthogonal":
                    nn.init.orthogonal_(layer.rec)
                else:
                    layer.rec.normal_(0, 1 / (int(h) * lv) ** 0.5)
                layer.op.bias.fill_(0.5)
            self.rnn.append(layer)
            n, mult, in_max = int(h), 1, float(lv)
        sizes = [int(h) for h in readout] + [self.outputs]
        for k, h in enumerate(sizes):
            lv = output_levels if k == len(sizes) - 1 else rlevels[k]
            layer = _QLayer("readout", nn.Linear(n, h), int(lv), (n,))
            with torch.no_grad():
                layer.op.weight.normal_(0, lv / in_max / n ** 0.5)
                layer.op.bias.zero_()
            self.readout.append(layer)
            n, in_max = h, float(lv)

    # ---- the model

    @property
    def wmax(self) -> int:
        return (1 << (self.weight_bits - 1)) - 1

    def input_integers(self, x) -> torch.Tensor:
        """``m = round(x * K)`` of inputs ``x`` (see :func:`input_integers`)."""
        return input_integers(x, self.input_shape, self.input_levels)

    def forward(self, x) -> torch.Tensor:
        """Output levels scaled to ``[0, 8]`` (logits for a cross-entropy loss), ``[batch,
        outputs]``; differentiable with straight-through rounding."""
        m = self.input_integers(x).to(self.rnn[0].op.weight.dtype)
        return self._run(m)[-1][-1] * (8.0 / self.readout[-1].levels)

    def _run(self, m: torch.Tensor) -> list[list[torch.Tensor]]:
        """Levels of every layer: per layer a list (recurrent/feature layers: one tensor per
        element; read-out layers: one)."""
        wmax = self.wmax
        out: list[list[torch.Tensor]] = [[] for _ in range(len(self.features) + len(self.rnn))]
        c = [m.new_zeros(len(m), layer.rec.shape[0]) for layer in self.rnn]
        for t in range(m.shape[1]):
            s = m[:, t].flatten(1)
            k = 0
            for layer in self.features:
                s = layer.step(s, None, wmax, self.exact, noise=self.noise)
                out[k].append(s)
                k += 1
            for i, layer in enumerate(self.rnn):
                c[i] = s = layer.step(s, c[i], wmax, self.exact, noise=self.noise)
                out[k].append(s)
                k += 1
        s = c[-1]
        for k, layer in enumerate(self.readout):
            s = layer.step(s, None, wmax, self.exact, k == len(self.readout) - 1, self.noise)
            out.append([s])
        return out

    def integers(self) -> list[IntLayer]:
        """Every layer in integers (feature, recurrent, read-out layers in order)."""
        wmax = self.wmax
        return [layer.integers(wmax) for layer in [*self.features, *self.rnn, *self.readout]]

    def levels(self, x) -> list[np.ndarray]:
        """The exact levels of every layer, in int64 arithmetic from :meth:`integers`:
        ``[T, batch, n]`` for feature and recurrent layers, ``[batch, n]`` for read-out ones."""
        return reference_levels(self.integers(), self.input_integers(x).long().numpy())

    def predict(self, x) -> np.ndarray:
        """Class per sample: the output's highest level (ties: the lowest index)."""
        return self.levels(x)[-1].argmax(-1)


def reference_levels(layers: list[IntLayer], m: np.ndarray) -> list[np.ndarray]:
    """Levels of every layer for input integers ``m`` ([batch, T, ...]) in int64 (see
    :meth:`QRNN.levels`)."""
    m = np.asarray(m, np.int64)
    batch, steps = m.shape[:2]
    per_t = [ly for ly in layers if ly.kind != "readout"]
    out = [np.zeros((steps, batch, ly.weight.shape[0]), np.int64) for ly in per_t]
    prev = [np.zeros((batch, ly.weight.shape[0]), np.int64) for ly in per_t]
    for t in range(steps):
        s = m[:, t].reshape(batch, -1)
        for k, ly in enumerate(per_t):
            u = s @ ly.weight.T + ly.bias
            if ly.recurrent is not None:
                u = u + prev[k] @ ly.recurrent.T
            s = np.clip((u + ly.th // 2) // ly.th, 0, ly.levels)
            out[k][t] = prev[k] = s
    s = prev[-1] if per_t else m[:, -1].reshape(batch, -1)
    res: list[np.ndarray] = list(out)
    for ly in layers[len(per_t):]:
        s = np.clip((s @ ly.weight.T + ly.bias + ly.th // 2) // ly.th, 0, ly.levels)
        res.append(s)
    return res
