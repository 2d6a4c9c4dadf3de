"""ANN -> SNN conversion: a torch model of affine layers and ReLUs becomes a spiking Network.

The model is read as a chain of affine maps (Linear, Conv2d, AvgPool2d, BatchNorm, Flatten,
Dropout) separated by activations (ReLU, or :class:`QCFS`). Every run of affine maps between two
activations is composed into one exact ``[target, source]`` matrix (BatchNorm and pooling fold
into it, Dropout vanishes); each activation becomes one population of IF neurons with reset by
subtraction. Convolutions keep their sparse connectivity as the projection's mask.

Two modes (docs/convert.md):

* ``"rate"``: firing rates approximate the ReLU activations; thresholds are balanced from
  calibration data (max or robust percentile, per layer or per channel) and the normalisation
  is put into the weights, so every population has scalar parameters.
* ``"lossless"``: the model's activations are :class:`QCFS` quantisers with ``L`` levels; the SNN
  reproduces the quantised ANN exactly. Each layer integrates its whole input while held below
  threshold, is released by a timed "kick" (clock neurons), emits its count as a burst of at
  most ``L`` spikes and is then silenced. The spike count of every neuron equals the QCFS level.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import fx, nn

from .errors import NetworkError, SimulationError
from .network import IF, Network, Quantization

# --------------------------------------------------------------------------- QCFS activation


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


# --------------------------------------------------------------------------- reading the model

AFFINE_MODULES = (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d,
                  nn.Dropout, nn.Identity)
SUPPORTED = "Linear, Conv2d, AvgPool2d, BatchNorm1d/2d, Flatten, Dropout, Identity, ReLU, QCFS"
_RELU_FUNCS = (torch.relu, nn.functional.relu)
_AFFINE_FUNCS = (torch.flatten,)
_AFFINE_METHODS = ("flatten", "view", "reshape")


@dataclass
class _Op:
    """One step of the model's chain."""

    position: int  # index in the chain (0 = first layer)
    name: str  # module path, or the function's name
    kind: str  # "affine", "relu" or "qcfs"
    fn: object  # callable on a batched float64 tensor (affine) or the QCFS module
    module: nn.Module | None = None


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m, qualname):
        return isinstance(m, QCFS) or super().is_leaf_module(m, qualname)


def _unsupported(pos, name, what):
    return NetworkError(f"model layer {pos} ({name}: {what}) is not supported for conversion; "
                        f"supported: {SUPPORTED}")


def model_ops(model: nn.Module) -> list[_Op]:
    """The model as a chain of affine maps and activations (float64 copies, eval mode).

    Raises
    ------
    NetworkError : not an nn.Module, not a plain chain, or an unsupported layer (named, with
        its position in the chain)
    """
    if not isinstance(model, nn.Module):
        raise NetworkError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    model = copy.deepcopy(model).double().eval()
    try:
        graph = _Tracer().trace(model)
    except Exception as e:
        raise NetworkError(f"model: cannot be traced as a chain of layers ({e})") from e
    mods = dict(model.named_modules())
    ops, prev = [], None
    for node in graph.nodes:
        if node.op == "placeholder":
            if prev is not None:
                raise NetworkError("model: only models with a single input can be converted")
            prev = node
            continue
        if node.op == "output":
            if node.args[0] is not prev:
                raise NetworkError("model: the output is not the end of a single chain of layers")
            break
        pos = len(ops)
        if node.op == "get_attr":
            raise _unsupported(pos, node.target, "a parameter used in forward()")
        if not node.args or node.args[0] is not prev or any(
                isinstance(a, fx.Node) for a in list(node.args[1:]) + list(node.kwargs.values())):
            raise NetworkError(f"model layer {pos} ({node.target}): not a plain chain (its input "
                               f"is not the previous layer's output alone); use nn.Sequential "
                               f"layers such as nn.Flatten")
        ops.append(_node_op(pos, node, mods))
        prev = node
    return ops


def _node_op(pos: int, node, mods) -> _Op:
    rest, kw = tuple(node.args[1:]), dict(node.kwargs)
    if node.op == "call_module":
        m = mods[node.target]
        if isinstance(m, QCFS):
            return _Op(pos, node.target, "qcfs", m, m)
        if isinstance(m, nn.ReLU):
            return _Op(pos, node.target, "relu", None, m)
        if isinstance(m, AFFINE_MODULES):
            return _Op(pos, node.target, "affine", m, m)
        raise _unsupported(pos, node.target, type(m).__name__)
    if node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target))
        if node.target in _RELU_FUNCS:
            return _Op(pos, name, "relu", None)
        if node.target in _AFFINE_FUNCS:
            f = node.target
            return _Op(pos, name, "affine", lambda x: f(x, *rest, **kw))
        raise _unsupported(pos, name, "function")
    if node.op == "call_method":
        name = node.target
        if name == "relu":
            return _Op(pos, name, "relu", None)
        if name in _AFFINE_METHODS:
            return _Op(pos, name, "affine", lambda x: getattr(x, name)(*rest, **kw))
        raise _unsupported(pos, f".{name}()", "tensor method")
    raise _unsupported(pos, str(node.target), node.op)


# --------------------------------------------------------------------------- affine blocks


@dataclass
class Block:
    """One population of the converted network: ``act(weight @ x + bias)``."""

    weight: np.ndarray  # float64 [out, in], the composed affine map
    bias: np.ndarray  # float64 [out]
    mask: np.ndarray | None  # bool [out, in] structural connectivity; None = all-to-all
    shape: tuple  # output shape without batch, e.g. (C, H, W) or (n,)
    act: str | None  # "relu", "qcfs" or None (a linear output layer)
    levels: int = 0  # QCFS levels L
    lam: float = 0.0  # QCFS clip value
    positions: list = field(default_factory=list)  # model layers folded into this block

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The block's activation on ``x`` ([batch, in]) in float64, as the ANN computes it."""
        z = x @ self.weight.T + self.bias
        if self.act == "relu":
            return np.maximum(z, 0.0)
        if self.act == "qcfs":
            return np.clip(np.floor(z * self.levels / self.lam + 0.5), 0, self.levels) \
                * (self.lam / self.levels)
        return z


def _affine_matrix(fn, in_shape):
    """(weight [out, in], bias [out], out_shape) of an affine callable, by probing a basis."""
    n = int(np.prod(in_shape))
    with torch.no_grad():
        zero = fn(torch.zeros((1,) + tuple(in_shape), dtype=torch.float64))
        basis = fn(torch.eye(n, dtype=torch.float64).reshape((n,) + tuple(in_shape)))
    if basis.shape[0] != n:
        raise NetworkError(f"model: a layer changed the batch size ({n} -> {basis.shape[0]})")
    w = (basis.reshape(n, -1) - zero.reshape(1, -1)).T.numpy()
    return w, zero.reshape(-1).numpy(), tuple(zero.shape[1:])


def _structure(op: _Op, in_shape, w: np.ndarray) -> np.ndarray:
    """Which (out, in) pairs a layer connects, independent of the weight values."""
    m = op.module
    if isinstance(m, nn.Linear):
        return np.ones(w.shape, bool)
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return np.eye(w.shape[0], w.shape[1], dtype=bool)
    if isinstance(m, nn.Conv2d):
        ones = copy.deepcopy(m)
        ones.weight.data = torch.ones_like(ones.weight)
        ones.bias = None
        return _affine_matrix(ones, in_shape)[0] != 0
    return w != 0


def blocks(model: nn.Module, input_shape) -> list[Block]:
    """Compose the model into blocks, one per activation (plus a final linear one if any).

    Parameters
    ----------
    model : the ANN (see :data:`SUPPORTED`)
    input_shape : shape of one input sample, e.g. ``(64,)`` or ``(1, 8, 8)``

    Raises
    ------
    NetworkError : unsupported layers, or a model with no affine layer at all
    """
    ops = model_ops(model)
    shape = tuple(int(s) for s in input_shape)
    n = int(np.prod(shape))
    w, b, m, pos = np.eye(n), np.zeros(n), np.eye(n, dtype=bool), []
    out: list[Block] = []
    for op in ops:
        if op.kind == "affine":
            try:
                wi, bi, new_shape = _affine_matrix(op.fn, shape)
            except RuntimeError as e:
                raise NetworkError(f"model layer {op.position} ({op.name}): cannot be applied to "
                                   f"input shape {shape} ({e})") from e
            mi = _structure(op, shape, wi)
            w, b = wi @ w, wi @ b + bi
            m = (mi.astype(np.float64) @ m.astype(np.float64)) > 0
            shape, pos = new_shape, pos + [op.position]
            continue
        if op.kind == "relu" and out and not pos and out[-1].act == "relu":
            continue  # ReLU after ReLU: idempotent
        lv, lam = ((op.module.levels, float(op.module.threshold.detach()))
                   if op.kind == "qcfs" else (0, 0.0))
        out.append(Block(w, b, None if m.all() else m, shape, op.kind, lv, lam,
                         pos + [op.position]))
        n = int(np.prod(shape))
        w, b, m, pos = np.eye(n), np.zeros(n), np.eye(n, dtype=bool), []
    if pos:
        out.append(Block(w, b, None if m.all() else m, shape, None, positions=pos))
    if not out:
        raise NetworkError("model: has no layers to convert")
    return out


def ann_forward(blks: list[Block], x: np.ndarray) -> list[np.ndarray]:
    """Every block's output for inputs ``x`` ([batch, ...]), float64."""
    a, acts = np.asarray(x, np.float64).reshape(len(x), -1), []
    for blk in blks:
        a = blk.forward(a)
        acts.append(a)
    return acts


# --------------------------------------------------------------------------- normalisation


def _channels(shape) -> np.ndarray:
    """Channel index of every flattened neuron (channel-major, as torch)."""
    n = int(np.prod(shape))
    per = int(np.prod(shape[1:])) if len(shape) == 3 else 1
    return np.arange(n) // per


def _scale(a: np.ndarray, shape, method: str, percentile: float, per_channel: bool):
    """Normalisation factor (the activation mapped to the maximal rate), per neuron ``[n]``."""
    def stat(v):
        v = v[v > 0]
        if v.size == 0:
            return 1.0
        return float(v.max()) if method == "max" else float(np.percentile(v, percentile))

    ch = _channels(shape)
    if not per_channel:
        return np.full(ch.size, stat(a))
    lam = np.array([stat(a[:, ch == c]) for c in range(ch.max() + 1)])
    return lam[ch]


# --------------------------------------------------------------------------- integer layout


def _pow2_threshold(max_w: float, wmax_int: int) -> int:
    """Largest power of two ``th`` (>= 2) with ``max_w * th <= wmax_int``: LSBs per threshold."""
    if max_w <= 0:
        return 1 << max(1, int(math.log2(wmax_int)))
    return 1 << min(14, max(1, math.floor(math.log2(wmax_int / max_w))))


def _split(totals: np.ndarray, wmax_int: int) -> np.ndarray:
    """Spread per-target totals (in LSB) over N source neurons: weights ``[target, N]``.

    The integer part is split into whole LSBs so quantisation only rounds the fraction.
    """
    totals = np.asarray(totals, np.float64)
    whole = np.trunc(totals)
    # at least 2 sources: torch 2.13's CPU matmul returns garbage for an inner dimension of 1
    # (a [rows >= 32, 1] @ [1, n] product, as the simulator's int_matmul makes it)
    n = max(2, math.ceil((np.abs(whole).max(initial=0) + 1) / (wmax_int - 1)))
    q, r = np.divmod(np.abs(whole).astype(np.int64), n)
    w = np.repeat(q[:, None], n, 1) + (np.arange(n)[None, :] < r[:, None])
    w = w * np.sign(whole)[:, None]
    w[:, 0] += totals - whole
    return w.astype(np.float64)


# --------------------------------------------------------------------------- the result


@dataclass
class Conversion:
    """A converted network with what is needed to feed and read it.

    Attributes
    ----------
    network : the spiking network (a :class:`~snnkit.network.Network` with its fixed-point
        format attached)
    mode : "rate" or "lossless"
    input : "current", "poisson" or "spikes"
    layers : names of the neuron populations that stand for the ANN's blocks; the last is
        the output
    steps : time steps of one inference (lossless: fixed by the schedule; rate: a default)
    levels : QCFS levels per layer (lossless)
    input_levels : K, spikes per input at value 1.0 (lossless spike input)
    kick_steps : step at which each layer is released (lossless)
    """

    network: Network
    mode: str
    input: str
    layers: list[str]
    steps: int
    levels: list[int] = field(default_factory=list)
    input_levels: int = 0
    kick_steps: list[int] = field(default_factory=list)
    input_shape: tuple = ()

    @property
    def output(self) -> str:
        return self.layers[-1]

    def encode(self, x, steps: int | None = None, seed: int | None = 0) -> torch.Tensor:
        """Input array ``[steps, batch, inputs]`` for samples ``x`` ([batch, ...]).

        Rate mode: constant current, or Poisson spikes with rate ``x``. Lossless: a current
        on step 0 only, or ``round(x*K)`` spikes on the first steps (a burst).

        Raises
        ------
        SimulationError : values outside [0, 1] where spikes or lossless mode need them, or
            ``steps`` shorter than the lossless schedule
        """
        from . import encoders

        steps = self.steps if steps is None else steps
        x = np.asarray(x, np.float64)
        x = x.reshape(len(x), -1) if x.ndim > 1 else x[None]
        if x.shape[1] != self.network.n_inputs:
            raise SimulationError(f"x: {x.shape[1]} values per sample, the network has "
                                  f"{self.network.n_inputs} inputs")
        if not np.all(np.isfinite(x)):
            raise SimulationError("x: contains NaN or inf")
        if (self.input != "current" or self.mode == "lossless") and (x.min() < 0 or x.max() > 1):
            raise SimulationError(f"x: {self.mode} mode with {self.input} input needs values in "
                                  f"[0, 1], got [{x.min():g}, {x.max():g}]")
        if self.mode == "lossless" and steps < self.steps:
            raise SimulationError(f"steps: the lossless schedule needs {self.steps} steps, "
                                  f"got {steps}")
        if self.mode == "rate":
            if self.input == "current":
                return encoders.constant_current(x, steps)
            return encoders.poisson(x, steps, seed)
        if self.input == "current":
            out = np.zeros((steps,) + x.shape)
            out[0] = x
            return torch.from_numpy(out)
        m = np.floor(x * self.input_levels + 0.5)
        return torch.from_numpy(np.arange(steps)[:, None, None] < m[None])

    def run(self, x, steps: int | None = None, backend: str = "float", seed: int | None = 0,
            **options):
        """Simulate samples ``x``; returns the :class:`~snnkit.result.Result`."""
        from .simulator import simulate

        steps = self.steps if steps is None else steps
        return simulate(self.network, self.encode(x, steps, seed), steps, backend, **options)

    def predict(self, x, steps: int | None = None, backend: str = "float", seed=0) -> np.ndarray:
        """Class per sample: the output neuron with most spikes (ties: lowest index)."""
        return self.run(x, steps, backend, seed).predict(self.output).cpu().numpy()

    def spike_count(self, result) -> np.ndarray:
        """Spikes per sample in the converted layers (inputs, clocks and bias excluded)."""
        return sum(result.spikes[n].sum((0, 2)) for n in self.layers).cpu().numpy()

    def reference(self, x, backend: str = "float") -> list[np.ndarray]:
        """The quantised ANN that lossless mode reproduces, computed in closed form.

        Per layer, ``count = clip(floor((v_init + input + kick) / threshold), 0, L)`` from the
        network's own weights: float64 for "float", the hardware's integers for "fixed".
        Returns the count arrays ``[batch, n]`` of every layer.
        """
        if self.mode != "lossless":
            raise NetworkError("reference: only defined for lossless conversions")
        return _reference(self, x, backend == "fixed")


def _reference(conv: Conversion, x, fixed: bool) -> list[np.ndarray]:
    from .quantize import encode, integer_neuron, integer_weights, quantize

    net = conv.network
    qnet = quantize(net)[0] if fixed else net
    q = net.quantization
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    if conv.input == "spikes":
        src = np.floor(x * conv.input_levels + 0.5)
    else:
        src = encode(x, q.frac_bits) if fixed else x

    def weights(i):
        return integer_weights(qnet, i, q).astype(np.float64) if fixed else \
            net.projections[i].weight

    counts, prev = [], "input"
    for k, name in enumerate(conv.layers):
        pop = net.population(name)
        if fixed:
            ip = integer_neuron(qnet, pop, q)
            v0, th = float(ip.v_init[0]), float(ip.threshold[0])
        else:
            v0, th = float(pop.neuron.v_init), float(pop.neuron.threshold)
        drive = np.full((len(x), pop.size), v0)
        for i, pr in enumerate(net.projections):
            if pr.target != name:
                continue
            if pr.source == prev:
                d = src @ weights(i).T
                if fixed and prev == "input" and conv.input == "current" and q.frac_bits:
                    d = np.floor((d + (1 << (q.frac_bits - 1))) / (1 << q.frac_bits))
                drive += d
            elif pr.source == f"clock{k}":
                drive += weights(i).sum(1)
        src = np.clip(np.floor(drive / th), 0, conv.levels[k])
        counts.append(src)
        prev = name
    return counts


# --------------------------------------------------------------------------- convert


def convert(model: nn.Module, calibration_data=None, *, mode: str = "rate",
            input: str = "current", normalization: str = "percentile", percentile: float = 99.9,
            per_channel: bool = False, v_init: float = 0.5, steps: int = 32,
            input_levels: int = 16, weight_bits: int = 8, state_bits: int | None = None,
            name: str = "converted") -> Conversion:
    """Convert a torch ANN into a spiking network.

    Parameters
    ----------
    model : nn.Sequential or a simple chain module of supported layers (:data:`SUPPORTED`)
    calibration_data : samples ``[batch, ...]`` shaped like the model's input; used for the
        input shape and, in rate mode, to balance thresholds of ReLU layers
    mode : "rate" (IF rate coding) or "lossless" (needs every activation, the output's
        included, to be a :class:`QCFS`; see :func:`to_qcfs`)
    input : "current" (analog first layer), "poisson" (rate mode) or "spikes" (lossless: a
        burst of ``round(x * input_levels)`` spikes)
    normalization : "percentile" (robust, ``percentile`` of positive activations) or "max"
    per_channel : balance per output channel (conv) or neuron (linear) instead of per layer
    v_init : rate mode: initial membrane potential as a fraction of the threshold
    steps : rate mode: default number of steps per inference
    input_levels : lossless spike input: spikes for an input of 1.0 (digits: 16)
    weight_bits, state_bits : the fixed-point format attached to the network (state_bits
        default: 16, or what the lossless schedule needs)

    Returns
    -------
    :class:`Conversion`

    Raises
    ------
    NetworkError : unsupported layers (named with their position), bad options, a lossless
        model without QCFS activations, or values that do not fit the requested format
    """
    _check_options(mode, input, normalization, percentile)
    if calibration_data is None:
        raise NetworkError("calibration_data: needed (at least one sample, for the input shape)")
    calib = np.asarray(calibration_data.detach().cpu() if isinstance(calibration_data, torch.Tensor)
                       else calibration_data, np.float64)
    if calib.ndim < 2 or len(calib) == 0:
        raise NetworkError(f"calibration_data: expected [batch, ...] samples, got shape "
                           f"{calib.shape}")
    blks = blocks(model, calib.shape[1:])
    if mode == "lossless":
        bad = [b for b in blks if b.act != "qcfs"]
        if bad:
            raise NetworkError(f"model layer {bad[0].positions[-1]}: lossless mode needs every "
                               f"activation, the output's included, to be QCFS (see "
                               f"snnkit.convert.to_qcfs); this block ends with "
                               f"{bad[0].act or 'no activation'}")
        if input == "poisson":
            raise NetworkError("input: lossless mode needs 'spikes' (burst) or 'current', "
                               "Poisson spikes are not exact")
        return _lossless(blks, calib, input, input_levels, weight_bits, state_bits, name)
    if input == "spikes":
        raise NetworkError("input: rate mode takes 'current' or 'poisson'")
    return _rate(blks, calib, input, normalization, percentile, per_channel, v_init, steps,
                 weight_bits, state_bits or 16, name)


def _check_options(mode, input, normalization, percentile):
    if mode not in ("rate", "lossless"):
        raise NetworkError(f"mode: must be 'rate' or 'lossless', got {mode!r}")
    if input not in ("current", "poisson", "spikes"):
        raise NetworkError(f"input: must be 'current', 'poisson' or 'spikes', got {input!r}")
    if normalization not in ("max", "percentile"):
        raise NetworkError(f"normalization: must be 'max' or 'percentile', got {normalization!r}")
    if not 0 < percentile <= 100:
        raise NetworkError(f"percentile: must be in (0, 100], got {percentile!r}")


def _unit_weights(blk: Block, unit_in: np.ndarray, unit_out: np.ndarray):
    """Weights and bias per unit of source and target activity (count or rate)."""
    return blk.weight * unit_in[None, :] / unit_out[:, None], blk.bias / unit_out


def _layer_names(n: int) -> list[str]:
    return [f"layer{k + 1}" for k in range(n - 1)] + ["output"]


def _rate(blks, calib, input, normalization, percentile, per_channel, v_init, steps,
          weight_bits, state_bits, name) -> Conversion:
    acts = ann_forward(blks, calib)
    wmax = (1 << (weight_bits - 1)) - 1
    unit, layers = [np.ones(calib[0].size)], []
    for blk, a in zip(blks, acts):
        if blk.act == "qcfs":
            unit.append(np.full(a.shape[1], blk.lam))
        else:
            unit.append(_scale(np.maximum(a, 0), blk.shape, normalization, percentile,
                               per_channel))
        layers.append(_unit_weights(blk, unit[-2], unit[-1]))
    ths = [_pow2_threshold(np.abs(w).max(initial=0), wmax) for w, _ in layers]
    frac = int(math.log2(max(ths)))
    lsb = 2.0 ** -frac
    net = Network(dt=1e-3, name=name,
                  quantization=Quantization(weight_bits=weight_bits, state_bits=state_bits,
                                            frac_bits=frac))
    net.add_input("input", calib[0].size, "current" if input == "current" else "spikes")
    has_bias = any(np.any(b != 0) for _, b in layers)
    biases = [_split(b * th, wmax) for (_, b), th in zip(layers, ths)] if has_bias else []
    if has_bias:
        nb = max(s.shape[1] for s in biases)
        net.add_population("bias", nb, IF(threshold=lsb, bias=lsb))  # fires on every step
    names = _layer_names(len(blks))
    for k, ((w, _), th) in enumerate(zip(layers, ths)):
        net.add_population(names[k], w.shape[0], IF(threshold=th * lsb, v_init=v_init * th * lsb))
        net.connect("input" if k == 0 else names[k - 1], names[k], w * th * lsb,
                    mask=blks[k].mask)
        if has_bias and np.any(biases[k] != 0):
            bw = np.zeros((w.shape[0], nb))
            bw[:, :biases[k].shape[1]] = biases[k]
            net.connect("bias", names[k], bw * lsb)
    return Conversion(net, "rate", input, names, steps, input_shape=calib.shape[1:])


def _lossless(blks, calib, input, input_levels, weight_bits, state_bits, name) -> Conversion:
    if not isinstance(input_levels, int) or input_levels < 1:
        raise NetworkError(f"input_levels: must be an integer >= 1, got {input_levels!r}")
    wmax = (1 << (weight_bits - 1)) - 1
    n_in = calib[0].size
    unit = [np.full(n_in, 1.0 / input_levels if input == "spikes" else 1.0)]
    nmax = [input_levels if input == "spikes" else 1]
    layers = []
    for blk in blks:
        unit.append(np.full(blk.weight.shape[0], blk.lam / blk.levels))
        layers.append(_unit_weights(blk, unit[-2], unit[-1]))
        nmax.append(blk.levels)
    ths = [_pow2_threshold(np.abs(w).max(initial=0), wmax) for w, _ in layers]
    frac = int(math.log2(max(ths)))
    fine = 2.0 ** -8  # float weights on a fine grid (in LSB): float32 sums stay exact
    kick = [0 if input == "current" else input_levels - 1]
    for blk in blks:
        kick.append(kick[-1] + blk.levels)
    plan, bound = [], 0.0
    for k, ((w, b), th) in enumerate(zip(layers, ths)):
        w_lsb = np.round(w * th / fine) * fine
        b_lsb = b * th
        pos = np.maximum(np.maximum(w_lsb, np.round(w_lsb)), 0).sum(1) * nmax[k]
        neg = np.minimum(np.minimum(w_lsb, np.round(w_lsb)), 0).sum(1) * nmax[k]
        hold = math.ceil(pos.max(initial=0)) + th
        v0_max = th / 2 + (pos + np.abs(b_lsb) + 1).max(initial=0)
        stop = max(0, math.ceil(v0_max - blks[k].levels * th)) + th
        bound = max(bound, hold + th - neg.min(initial=0) + 1, v0_max + stop + abs(neg.min()))
        plan.append((w_lsb, b_lsb, th, hold, stop))
    need = math.ceil(math.log2(bound + 1)) + 1
    need = max(need, math.ceil(math.log2(kick[-1] + 2)) + 1)
    if state_bits is None:
        state_bits = max(16, need)
    elif state_bits < need:
        raise NetworkError(f"state_bits: the lossless schedule needs {need}-bit states (hold-down "
                           f"and kick of up to {bound:.0f} LSB), got {state_bits}")
    lsb = 2.0 ** -frac
    net = Network(dt=1e-3, name=name,
                  quantization=Quantization(weight_bits=weight_bits, state_bits=state_bits,
                                            frac_bits=frac))
    net.add_input("input", n_in, "current" if input == "current" else "spikes")
    kicks = [_split(hold + b, wmax) for (_, b, _, hold, _) in plan]
    stops = [_split(np.full(len(b), -float(stop)), wmax) for (_, b, _, _, stop) in plan]
    sizes = [max(kicks[k].shape[1], stops[k - 1].shape[1] if k else 1) for k in range(len(plan))]
    sizes.append(stops[-1].shape[1])
    floor_v = -float(1 << (state_bits - 1))
    for k, t in enumerate(kick):  # clock k fires once, at step kick[k]
        net.add_population(f"clock{k}", sizes[k], IF(threshold=(t + 1) * lsb, bias=lsb,
                                                     reset="value", v_reset=floor_v * lsb))
    names = _layer_names(len(blks))
    for k, (w_lsb, _, th, hold, _) in enumerate(plan):
        net.add_population(names[k], w_lsb.shape[0],
                           IF(threshold=th * lsb, v_init=(th / 2 - hold) * lsb))
        net.connect("input" if k == 0 else names[k - 1], names[k], w_lsb * lsb, mask=blks[k].mask)
        for clock, part in ((k, kicks[k]), (k + 1, stops[k])):
            cw = np.zeros((w_lsb.shape[0], sizes[clock]))
            cw[:, :part.shape[1]] = part
            net.connect(f"clock{clock}", names[k], cw * lsb)
    return Conversion(net, "lossless", input, names, kick[-1], [b.levels for b in blks],
                      input_levels if input == "spikes" else 0, kick[:-1],
                      input_shape=calib.shape[1:])


# --------------------------------------------------------------------------- QCFS models


def to_qcfs(model: nn.Module, levels: int, calibration_data, percentile: float = 99.9):
    """A copy of ``model`` with every nn.ReLU replaced by :class:`QCFS` and a QCFS appended to
    the output, each clip value started at the ``percentile`` of its calibration activations.

    Fine-tune the result (e.g. :func:`snnkit.datasets.fit`) before a lossless conversion.

    Raises
    ------
    NetworkError : unsupported layers, or ReLUs applied as functions (use nn.ReLU modules)
    """
    calib = np.asarray(calibration_data, np.float64)
    ops = model_ops(model)
    blks = blocks(model, calib.shape[1:])
    acts = ann_forward(blks, calib)
    relus = [op for op in ops if op.kind == "relu"]
    if any(op.module is None for op in relus):
        raise NetworkError(f"model layer {next(op.position for op in relus if op.module is None)}"
                           f": a functional relu cannot be replaced by QCFS; use nn.ReLU")
    out = copy.deepcopy(model)
    lams = [float(_scale(np.maximum(a, 0), b.shape, "percentile", percentile, False)[0])
            for a, b in zip(acts, blks)]
    for op, lam in zip(relus, lams):
        parent, _, attr = op.name.rpartition(".")
        setattr(out.get_submodule(parent) if parent else out, attr, QCFS(levels, lam))
    if blks[-1].act is None:
        out = nn.Sequential(out, QCFS(levels, lams[-1]))
    return out


# --------------------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="snnkit convert", description="Convert a torch ANN "
                                "(torch.save'd nn.Module) into a spiking network file.")
    p.add_argument("model", help="MODEL.pt, or 'example:mlp' / 'example:cnn' (built-in digits "
                   "models; 'example:mlp-qcfs8' etc. for QCFS-trained ones)")
    p.add_argument("--calib", help="calibration data .npz (array 'x', or the first array); "
                   "default for examples: the digits training set")
    p.add_argument("-o", "--out", required=True, help="output network file (.snn)")
    p.add_argument("--mode", choices=("rate", "lossless"), default="rate")
    p.add_argument("--input", choices=("current", "poisson", "spikes"), default=None,
                   help="first-layer drive (default: current in rate mode, spikes in lossless)")
    p.add_argument("--norm", choices=("percentile", "max"), default="percentile")
    p.add_argument("--percentile", type=float, default=99.9)
    p.add_argument("--per-channel", action="store_true")
    p.add_argument("--steps", type=int, default=32, help="rate mode: steps per inference")
    p.add_argument("--input-levels", type=int, default=16)
    p.add_argument("--weight-bits", type=int, default=8)
    return p


def _load_model(spec: str):
    if spec.startswith("example:"):
        from . import datasets

        return datasets.example_model(spec.split(":", 1)[1])
    try:
        model = torch.load(spec, weights_only=False, map_location="cpu")
    except (OSError, RuntimeError, EOFError) as e:
        raise NetworkError(f"model: cannot load {spec!r} ({e})") from e
    if isinstance(model, dict):
        raise NetworkError(f"model: {spec!r} holds a state_dict, not a module; "
                           f"torch.save the nn.Module itself")
    return model


def _load_calib(path: str) -> np.ndarray:
    try:
        with np.load(path) as z:
            key = "x" if "x" in z.files else (z.files[0] if z.files else None)
            if key is None:
                raise NetworkError(f"--calib: {path!r} holds no arrays")
            return z[key]
    except (OSError, ValueError) as e:
        raise NetworkError(f"--calib: cannot read {path!r} ({e})") from e


def convert_main(argv=None) -> int:
    """``snnkit convert MODEL.pt --calib DATA.npz -o NET``; returns the exit status.

    Writes NET and, beside it, ``NET.conversion.json`` (mode, input encoding, steps, output
    population), which a reader needs to feed the network.
    """
    args = argv if isinstance(argv, argparse.Namespace) else _parser().parse_args(argv)
    model = _load_model(args.model)
    if args.calib:
        calib = _load_calib(args.calib)
    elif args.model.startswith("example:"):
        from . import datasets

        calib = datasets.digits(image="cnn" in args.model)[0][:500]
    else:
        raise NetworkError("--calib: needed for a model file")
    inp = args.input or ("spikes" if args.mode == "lossless" else "current")
    conv = convert(model, calib, mode=args.mode, input=inp, normalization=args.norm,
                   percentile=args.percentile, per_channel=args.per_channel, steps=args.steps,
                   input_levels=args.input_levels, weight_bits=args.weight_bits,
                   name=Path(args.out).stem)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    conv.network.save(args.out)
    info = {"mode": conv.mode, "input": conv.input, "steps": conv.steps, "output": conv.output,
            "layers": conv.layers, "levels": conv.levels, "input_levels": conv.input_levels,
            "kick_steps": conv.kick_steps, "input_shape": list(conv.input_shape)}
    Path(str(args.out) + ".conversion.json").write_text(json.dumps(info, indent=2) + "\n")
    print(conv.network.summary())
    print(f"\n{conv.mode} conversion, {conv.input} input, {conv.steps} steps per inference; "
          f"wrote {args.out} and {args.out}.conversion.json")
    return 0
