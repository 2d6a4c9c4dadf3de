"""A torch ANN read the way the converter sees it: a chain of affine maps (Linear, Conv2d,
AvgPool2d, BatchNorm, Flatten, Dropout) separated by activations (ReLU or :class:`QCFS`).

Every run of affine maps between two activations is composed into one exact float64
``[target, source]`` matrix (:class:`Block`; BatchNorm and pooling fold into it, Dropout
vanishes, a convolution keeps its connectivity as a mask). Also here: the ANN's own forward
pass over the blocks, the activation statistics that balance thresholds, and
:func:`to_qcfs`, which turns a ReLU model into its QCFS version for lossless conversion.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import fx, nn

from .errors import NetworkError
from .qcfs import QCFS

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


# What to use instead, for the layers users reach for first (module or function names,
# lower case without underscores).
_RETRAIN = "ReLU (or QCFS for the lossless mode: docs/convert.md); retrain with it"
_INSTEAD = {"maxpool2d": "AvgPool2d (a spiking max has no exact rate equivalent); retrain with it",
            "adaptiveavgpool2d": "AvgPool2d with the kernel that gives the same output size",
            "gelu": _RETRAIN, "silu": _RETRAIN, "sigmoid": _RETRAIN, "tanh": _RETRAIN,
            "leakyrelu": "ReLU (spike rates cannot be negative); retrain with it"}


def _unsupported(pos, name, what):
    keys = {str(k).rsplit(".", 1)[-1].replace("_", "").lower() for k in (name, what)}
    hint = next((f"; use {_INSTEAD[k]}" for k in sorted(keys) if k in _INSTEAD), "")
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
