"""A torch ANN read the way the converter sees it: a chain of affine maps (Linear, Conv2d,
AvgPool2d, BatchNorm, Flatten, Dropout) separated by activations (ReLU or :class:`QCFS`).

Every run of affine maps between two activations is composed into one exact float64
``[target, source]`` matrix (:class:`Block`; BatchNorm and pooling fold into it, Dropout
vanishes), or, where the run is one convolution, into its shared kernel (a convolution
block: Conv2d with BatchNorm2d and AvgPool2d folded in). Also here: the ANN's own forward
pass over the blocks, the activation statistics that balance thresholds, and
:func:`to_qcfs`, which turns a ReLU model into its QCFS version for lossless conversion.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import fx, nn

from .conv import Conv
from .errors import NetworkError
from .qcfs import QCFS

# --------------------------------------------------------------------------- reading the model

AFFINE_MODULES = (nn.Linear, nn.Conv2d, nn.AvgPool2d, nn.Flatten, nn.Unflatten, nn.BatchNorm1d,
                  nn.BatchNorm2d, nn.Dropout, nn.Identity)
RESHAPES = (nn.Flatten, nn.Unflatten, nn.Dropout, nn.Identity)  # the flat data stays in place
SUPPORTED = ("Linear, Conv2d, AvgPool2d, BatchNorm1d/2d, Flatten, Unflatten, Dropout, Identity, "
             "ReLU, QCFS")
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


# What to use instead, for the layers users reach for first (module or function names,
# lower case without underscores).
_RETRAIN = "ReLU (or QCFS for the lossless mode: docs/convert.md); retrain with it"
_INSTEAD = {"maxpool2d": "AvgPool2d (a spiking max has no exact rate equivalent); retrain with it",
            "adaptiveavgpool2d": "AvgPool2d with the kernel that gives the same output size",
            "avgpool2d": "the module nn.AvgPool2d (the function is not read)",
            "gelu": _RETRAIN, "silu": _RETRAIN, "sigmoid": _RETRAIN, "tanh": _RETRAIN,
            "leakyrelu": "ReLU (spike rates cannot be negative); retrain with it"}


def instead_of(*names) -> str | None:
    """What to use instead of the layer, module or operator ``names`` name (e.g.
    ``"torch.ops.aten.max_pool2d.default"``), where that is known."""
    keys = {str(k).removesuffix(".default").rsplit(".", 1)[-1].replace("_", "").lower()
            for k in names}
    return next((_INSTEAD[k] for k in sorted(keys) if k in _INSTEAD), None)


def _unsupported(pos, name, what):
    use = instead_of(name, what)
    hint = f"; use {use}" if use else ""
    return NetworkError(f"model layer {pos} ({name}: {what}) is not supported for conversion"
                        f"{hint}; supported: {SUPPORTED}")


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
    """One population of the converted network: ``act(weight @ x + bias)``, or with ``conv``
    set, ``act(conv2d(x, weight) + bias)``: one kernel shared by every position."""

    weight: np.ndarray  # float64 [out, in], the composed affine map; conv: the kernel
    bias: np.ndarray  # float64 [out] (per neuron, conv blocks too)
    mask: np.ndarray | None  # bool [out, in] structural connectivity; None = all-to-all / conv
    shape: tuple  # output shape without batch, e.g. (C, H, W) or (n,)
    act: str | None  # "relu", "qcfs" or None (a linear output layer)
    levels: int = 0  # QCFS levels L
    lam: float = 0.0  # QCFS clip value
    positions: list = field(default_factory=list)  # model layers folded into this block
    conv: Conv | None = None  # the geometry when the block is a convolution

    def dense(self) -> np.ndarray:
        """The ``[out, in]`` matrix (a convolution's kernel at every position)."""
        return self.weight if self.conv is None else self.conv.dense(self.weight)

    def affine(self, x: np.ndarray) -> np.ndarray:
        """``weight @ x + bias`` for ``x`` ([batch, in]), float64."""
        if self.conv is None:
            return x @ self.weight.T + self.bias
        return conv_apply(self.conv, self.weight, x) + self.bias

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The block's activation on ``x`` ([batch, in]) in float64, as the ANN computes it."""
        z = self.affine(x)
        if self.act == "relu":
            return np.maximum(z, 0.0)
        if self.act == "qcfs":
            return np.clip(np.floor(z * self.levels / self.lam + 0.5), 0, self.levels) \
                * (self.lam / self.levels)
        return z


def conv_apply(conv: Conv, kernel: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``kernel`` convolved over ``x`` ([batch, source] flat, channel-major) in float64:
    ``[batch, target]`` (the dense matrix product, without making the matrix)."""
    x = torch.as_tensor(np.ascontiguousarray(x, np.float64)).reshape((len(x),) + conv.in_shape)
    with torch.no_grad(), torch.backends.nnpack.flags(False):  # plain multiply-adds
        y = nn.functional.conv2d(x, torch.as_tensor(kernel, dtype=torch.float64),
                                 **conv.options())
    return y.reshape(len(x), -1).numpy()


def _out_shape(op: _Op, in_shape) -> tuple:
    """The shape a layer makes of ``in_shape`` (probed on zeros)."""
    try:
        with torch.no_grad():
            y = op.fn(torch.zeros((2,) + tuple(in_shape), dtype=torch.float64))
    except RuntimeError as e:
        raise NetworkError(f"model layer {op.position} ({op.name}): cannot be applied to "
                           f"input shape {in_shape} ({e})") from e
    if y.shape[0] != 2:
        raise NetworkError(f"model: a layer changed the batch size (2 -> {y.shape[0]})")
    return tuple(y.shape[1:])


def _structure_fn(op: _Op):
    """The layer with every weight 1 and no bias: its output is > 0 exactly where an input
    is connected (so a chain of them gives the run's connectivity, whatever the weights)."""
    m = op.module
    if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        return lambda x: x
    if isinstance(m, (nn.Linear, nn.Conv2d)):
        ones = copy.deepcopy(m)
        ones.weight.data = torch.ones_like(ones.weight)
        ones.bias = None
        return ones
    return op.fn  # pooling (positive weights) and reshapes


PROBE_BYTES = 1 << 26  # probe a run with this much activity at a time


def _dense_block(run, in_shape):
    """(weight [out, in], bias [out], mask) of a run of affine layers: the layers applied to
    every unit vector (a block of them at a time), and their structural twins for the mask."""
    n = int(np.prod(in_shape))
    fns, twins = [op.fn for op, _, _ in run], [_structure_fn(op) for op, _, _ in run]
    widest = max([n] + [int(np.prod(so)) for _, _, so in run])
    chunk = max(1, PROBE_BYTES // (8 * widest))

    def chain(fs, x):
        for f in fs:
            x = f(x)
        return x.reshape(len(x), -1)

    with torch.no_grad():
        zero = chain(fns, torch.zeros((1,) + tuple(in_shape), dtype=torch.float64))
        w = np.empty((zero.shape[1], n))
        m = np.empty((zero.shape[1], n), bool)
        for lo in range(0, n, chunk):
            k = min(chunk, n - lo)
            e = torch.zeros((k, n), dtype=torch.float64)
            e[torch.arange(k), lo + torch.arange(k)] = 1.0
            e = e.reshape((k,) + tuple(in_shape))
            w[:, lo:lo + k] = (chain(fns, e) - zero).T.numpy()
            m[:, lo:lo + k] = (chain(twins, e) > 0).T.numpy()
    return w, zero[0].numpy(), m


# --------------------------------------------------------------------------- convolution blocks


@dataclass
class _Piece:
    """One convolution-like layer: a kernel with dense channels [C_out, C_in, kH, kW]."""

    kernel: np.ndarray
    bias: np.ndarray  # [C_out]
    stride: tuple
    padding: tuple
    groups: int  # the grouping the kernel's zeros follow (C: depthwise)


def _piece(m, in_shape) -> _Piece | None:
    """A Conv2d, BatchNorm2d (running statistics) or AvgPool2d as a convolution; None for
    anything else (or a form that is not one: reflect padding, asymmetric 'same')."""
    c = in_shape[0]
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros":
            return None
        pad = m.padding
        if isinstance(pad, str):
            r = m._reversed_padding_repeated_twice  # [left, right, top, bottom]
            if r[0] != r[1] or r[2] != r[3]:
                return None
            pad = (r[2], r[0])
        k = _undilate(m.weight.detach().numpy(), m.dilation)
        bias = np.zeros(k.shape[0]) if m.bias is None else m.bias.detach().numpy()
        return _Piece(_dense_channels(k, m.groups), bias, tuple(m.stride), tuple(pad), m.groups)
    if isinstance(m, nn.BatchNorm2d):
        if m.running_mean is None:
            return None
        scale = 1.0 / torch.sqrt(m.running_var + m.eps)
        shift = -m.running_mean * scale
        if m.affine:
            scale, shift = scale * m.weight, shift * m.weight + m.bias
        k = np.zeros((c, c, 1, 1))
        k[np.arange(c), np.arange(c)] = scale.detach().numpy()[:, None, None]
        return _Piece(k, shift.detach().numpy(), (1, 1), (0, 0), c)
    if isinstance(m, nn.AvgPool2d):
        kh, kw = _two(m.kernel_size)
        st = _two(m.stride if m.stride is not None else m.kernel_size)
        pad = _two(m.padding)
        if max(pad) and not m.count_include_pad:
            return None  # the border divides by fewer: not one kernel
        k = np.zeros((c, c, kh, kw))
        k[np.arange(c), np.arange(c)] = 1.0 / (m.divisor_override or kh * kw)
        return _Piece(k, np.zeros(c), st, pad, c)
    return None


def _two(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _undilate(k: np.ndarray, dilation) -> np.ndarray:
    dh, dw = _two(dilation)
    if (dh, dw) == (1, 1):
        return k
    out = np.zeros(k.shape[:2] + (dh * (k.shape[2] - 1) + 1, dw * (k.shape[3] - 1) + 1))
    out[:, :, ::dh, ::dw] = k
    return out


def _dense_channels(k: np.ndarray, groups: int) -> np.ndarray:
    """[C_out, C_in/groups, kH, kW] -> [C_out, C_in, kH, kW] (zeros between groups)."""
    if groups == 1:
        return k
    co, cg = k.shape[:2]
    out = np.zeros((co, cg * groups) + k.shape[2:])
    og = co // groups
    for g in range(groups):
        out[g * og:(g + 1) * og, g * cg:(g + 1) * cg] = k[g * og:(g + 1) * og]
    return out


def _grouped(k: np.ndarray, groups: int) -> tuple[np.ndarray, int]:
    """The kernel in torch's grouped form, with ``groups`` if its zeros follow them (else 1)."""
    co, ci = k.shape[:2]
    if groups > 1 and co % groups == 0 and ci % groups == 0:
        og, cg = co // groups, ci // groups
        out = np.stack([k[o, (o // og) * cg:(o // og + 1) * cg] for o in range(co)])
        if np.array_equal(_dense_channels(out, groups), k):
            return out, groups
    return k, 1


def _fold(a: _Piece, b: _Piece) -> _Piece:
    """``b`` after ``a`` as one convolution (exact where ``b`` has no padding; with padding,
    where ``a`` has no bias and its border reads padding only: checked by the caller)."""
    (sh, sw), (ah, aw) = a.stride, a.kernel.shape[2:]
    bh, bw = b.kernel.shape[2:]
    k = np.zeros((b.kernel.shape[0], a.kernel.shape[1], (bh - 1) * sh + ah, (bw - 1) * sw + aw))
    for jh in range(bh):
        for jw in range(bw):
            k[:, :, jh * sh:jh * sh + ah, jw * sw:jw * sw + aw] += np.einsum(
                "ab,bcij->acij", b.kernel[:, :, jh, jw], a.kernel)
    bias = b.bias + b.kernel.sum((2, 3)) @ a.bias
    ca, cb = a.kernel.shape[0], b.kernel.shape[0]
    groups = (b.groups if a.groups == ca else a.groups if b.groups == cb else
              a.groups if a.groups == b.groups else 1)
    return _Piece(k, bias, (sh * b.stride[0], sw * b.stride[1]),
                  (a.padding[0] + b.padding[0] * sh, a.padding[1] + b.padding[1] * sw), groups)


def _conv_block(run, in_shape):
    """(kernel, bias per neuron, Conv) of a run of layers that is one convolution, or None.

    The run may hold Conv2d, BatchNorm2d and AvgPool2d in any order (plus Flatten, Dropout,
    Identity and reshapes that keep the data in place); their composition is taken as a
    convolution where it is one, checked against the layers themselves on random inputs.
    """
    pieces, first, last = [], None, None
    single = None
    for op, si, so in run:
        if op.module is None or isinstance(op.module, RESHAPES):
            continue  # (functions and methods: flatten, view, reshape)
        p = _piece(op.module, si) if len(si) == 3 else None
        if p is None or (last is not None and si != last):
            return None
        if first is None:
            first, single = si, op.module
        pieces.append(p)
        last = so
    if not pieces or len(last) != 3:
        return None
    if len(pieces) == 1 and isinstance(single, nn.Conv2d):  # as it is (dilation kept)
        k = single.weight.detach().numpy().copy()
        pad = pieces[0].padding
        opts = dict(stride=single.stride, padding=pad, dilation=single.dilation,
                    groups=single.groups)
        bias = pieces[0].bias
    else:
        p = pieces[0]
        for q in pieces[1:]:
            p = _fold(p, q)
        k, g = _grouped(p.kernel, p.groups)
        opts = dict(stride=p.stride, padding=p.padding, dilation=1, groups=g)
        bias = p.bias
    try:
        conv = Conv.make(first, k.shape, **opts)
    except NetworkError:
        return None
    if conv.out_shape != tuple(last):
        return None
    k[:, :, ~_used_taps(conv, 0)] = 0.0  # taps that only ever read padding
    k[:, :, :, ~_used_taps(conv, 1)] = 0.0
    bias = np.repeat(np.asarray(bias, np.float64), last[1] * last[2])
    x = np.random.default_rng(0).standard_normal((2,) + tuple(in_shape))
    with torch.no_grad():
        want = torch.from_numpy(x)
        for op, _, _ in run:
            want = op.fn(want)
    want = want.reshape(2, -1).numpy()
    got = conv_apply(conv, k, x.reshape(2, -1)) + bias
    if not np.allclose(got, want, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(want).max())):
        return None  # e.g. padding after a layer with a bias: the border differs
    return k, bias, conv


def _used_taps(conv: Conv, axis: int) -> np.ndarray:
    """Kernel rows (axis 0) or columns (1) that reach the source at some output position."""
    n, o = conv.in_shape[1 + axis], conv.out_shape[1 + axis]
    s, p, d = conv.stride[axis], conv.padding[axis], conv.dilation[axis]
    at = np.arange(o)[:, None] * s - p + np.arange(conv.kernel[axis])[None, :] * d
    return ((at >= 0) & (at < n)).any(0)


def blocks(model: nn.Module, input_shape) -> list[Block]:
    """Compose the model into blocks, one per activation (plus a final linear one if any).

    A run of layers that is one convolution (Conv2d, with BatchNorm2d folded in, and an
    AvgPool2d before or after it where the composition is again a convolution) becomes a
    convolution block: its kernel, not a matrix over every (target, source) pair. Anything
    else is composed into a dense matrix with its connectivity as the mask.

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
    start, run, out = shape, [], []

    def block(act, lv=0, lam=0.0, positions=()):
        pos = [op.position for op, _, _ in run] + list(positions)
        c = _conv_block(run, start)
        if c is not None:
            return Block(c[0], c[1], None, c[2].out_shape, act, lv, lam, pos, c[2])
        w, b, m = _dense_block(run, start)
        return Block(w, b, None if m.all() else m, shape, act, lv, lam, pos)

    for op in ops:
        if op.kind == "affine":
            new_shape = _out_shape(op, shape)
            run.append((op, shape, new_shape))
            shape = new_shape
            continue
        if op.kind == "relu" and out and not run and out[-1].act == "relu":
            continue  # ReLU after ReLU: idempotent
        lv, lam = ((op.module.levels, float(op.module.threshold.detach()))
                   if op.kind == "qcfs" else (0, 0.0))
        out.append(block(op.kind, lv, lam, [op.position]))
        start, run = shape, []
    if run:
        out.append(block(None))
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


# --------------------------------------------------------------------------- activation statistics


def _channels(shape) -> np.ndarray:
    """Channel index of every flattened neuron (channel-major, as torch)."""
    n = int(np.prod(shape))
    per = int(np.prod(shape[1:])) if len(shape) == 3 else 1
    return np.arange(n) // per


def activation_scale(a: np.ndarray, shape, method: str, percentile: float, per_channel: bool):
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
    lams = [float(activation_scale(np.maximum(a, 0), b.shape, "percentile", percentile, False)[0])
            for a, b in zip(acts, blks)]
    for op, lam in zip(relus, lams):
        parent, _, attr = op.name.rpartition(".")
        setattr(out.get_submodule(parent) if parent else out, attr, QCFS(levels, lam))
    if blks[-1].act is None:
        out = nn.Sequential(out, QCFS(levels, lams[-1]))
    return out
