"""A torch recurrent model read the way the converter sees it (:mod:`snnkit.rnn_quantize`
makes it a :class:`QRNN`).

Accepted forms (docs/convert.md, "Recurrent networks"): a :class:`~snnkit.qrnn.QRNN`; a model
using ``nn.RNN(nonlinearity="relu")`` or ``nn.RNNCell(nonlinearity="relu")``; or a model
whose ``forward`` loops over the elements of a ``[batch, T, ...]`` input and computes each
layer as an affine map of the element, of the layer below and of its own previous output,
followed by an ``nn.ReLU`` or :class:`~snnkit.qcfs.QCFS` *module*; optionally feature layers
before the recurrence and read-out layers after the last element.

The model is read by probing, as :mod:`snnkit.ann` reads affine blocks: every ``nn.RNN`` is
replaced by the same recurrence written as a loop of ``nn.Linear`` and ``nn.ReLU`` modules,
hooks on the activation modules override their outputs with basis vectors, and the
pre-activations they then receive are the weights, exactly (float64). The recurrence read
this way is checked against the model on the calibration data.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .errors import NetworkError
from .qcfs import QCFS
from .qrnn import QRNN

UNSUPPORTED = {
    nn.LSTM: "an LSTM's gates multiply activations, which spike counts cannot do",
    nn.GRU: "a GRU's gates multiply activations, which spike counts cannot do",
    nn.LSTMCell: "an LSTM's gates multiply activations, which spike counts cannot do",
    nn.GRUCell: "a GRU's gates multiply activations, which spike counts cannot do",
    nn.Tanh: "tanh is not a clipped ReLU, so no spike count equals it",
    nn.Sigmoid: "a sigmoid is not a clipped ReLU, so no spike count equals it",
}
INSTEAD = ("use nn.RNN(nonlinearity='relu'), a loop of nn.Linear + nn.ReLU/QCFS modules, or "
           "QRNN from snnkit.convert (train it in torch, then convert)")
_ACT = (nn.ReLU, QCFS)


def check_supported(model: nn.Module) -> None:
    """Raise on recurrent forms a spiking network cannot reproduce (LSTM, GRU, tanh RNN).

    Raises
    ------
    NetworkError : naming the module and what to use instead
    """
    for name, m in model.named_modules():
        for cls, why in UNSUPPORTED.items():
            if isinstance(m, cls):
                raise NetworkError(f"model layer {name!r} ({type(m).__name__}) is not supported "
                                   f"for recurrent conversion: {why}; {INSTEAD}")
        if isinstance(m, (nn.RNN, nn.RNNCell)) and m.nonlinearity != "relu":
            raise NetworkError(f"model layer {name!r} ({type(m).__name__} with nonlinearity="
                               f"{m.nonlinearity!r}) is not supported for recurrent conversion: "
                               f"tanh is not a clipped ReLU; use nonlinearity='relu'")
        if isinstance(m, nn.RNN) and m.bidirectional:
            raise NetworkError(f"model layer {name!r} (bidirectional nn.RNN) is not supported: "
                               f"the backward pass needs the whole sequence first; "
                               f"use bidirectional=False")


def is_recurrent(model: nn.Module) -> bool:
    """Whether ``model`` contains a recurrent module (nn.RNNBase, nn.RNNCellBase, QRNN)."""
    return any(isinstance(m, (nn.RNNBase, nn.RNNCellBase, QRNN)) for m in model.modules())


# --------------------------------------------------------------------------- nn.RNN as a loop


class _LoopRNN(nn.Module):
    """``nn.RNN`` (ReLU) written as a loop of ``nn.Linear`` and ``nn.ReLU`` modules."""

    def __init__(self, rnn: nn.RNN):
        super().__init__()
        self.batch_first, self.hidden = rnn.batch_first, rnn.hidden_size
        self.inp, self.rec, self.act = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for k in range(rnn.num_layers):
            w_ih, w_hh = getattr(rnn, f"weight_ih_l{k}"), getattr(rnn, f"weight_hh_l{k}")
            lin, rec = nn.Linear(w_ih.shape[1], w_ih.shape[0]), nn.Linear(*w_hh.shape[::-1])
            lin.weight.data, rec.weight.data = w_ih.detach().clone(), w_hh.detach().clone()
            b = (getattr(rnn, f"bias_ih_l{k}") + getattr(rnn, f"bias_hh_l{k}")).detach() \
                if rnn.bias else torch.zeros(w_ih.shape[0], dtype=w_ih.dtype)
            lin.bias.data, rec.bias.data = b.clone(), torch.zeros_like(b)
            self.inp.append(lin)
            self.rec.append(rec)
            self.act.append(nn.ReLU())

    def forward(self, x, h0=None):
        if h0 is not None:
            raise NetworkError("nn.RNN: an initial hidden state h0 is not supported (the "
                               "converted network starts from zero)")
        x = x if self.batch_first else x.transpose(0, 1)
        h = [x.new_zeros(x.shape[0], self.hidden) for _ in self.inp]
        outs = []
        for t in range(x.shape[1]):
            s = x[:, t]
            for k in range(len(self.inp)):
                h[k] = s = self.act[k](self.inp[k](s) + self.rec[k](h[k]))
            outs.append(s)
        out = torch.stack(outs, 1)
        return (out if self.batch_first else out.transpose(0, 1)), torch.stack(h, 0)


class _LoopCell(nn.Module):
    """``nn.RNNCell`` (ReLU) as ``nn.Linear`` + ``nn.ReLU`` modules."""

    def __init__(self, cell: nn.RNNCell):
        super().__init__()
        self.inp = nn.Linear(cell.input_size, cell.hidden_size)
        self.rec = nn.Linear(cell.hidden_size, cell.hidden_size)
        self.inp.weight.data = cell.weight_ih.detach().clone()
        self.rec.weight.data = cell.weight_hh.detach().clone()
        b = (cell.bias_ih + cell.bias_hh).detach() if cell.bias else \
            torch.zeros(cell.hidden_size, dtype=cell.weight_ih.dtype)
        self.inp.bias.data, self.rec.bias.data = b.clone(), torch.zeros_like(b)
        self.act = nn.ReLU()

    def forward(self, x, h=None):
        h = x.new_zeros(x.shape[0], self.rec.weight.shape[0]) if h is None else h
        return self.act(self.inp(x) + self.rec(h))


def _as_loops(model: nn.Module) -> nn.Module:
    """A float64 eval copy of ``model`` with every nn.RNN / nn.RNNCell written as a loop."""
    model = copy.deepcopy(model).double().eval()
    for name, m in list(model.named_modules()):
        if isinstance(m, (nn.RNN, nn.RNNCell)):
            new = _LoopRNN(m) if isinstance(m, nn.RNN) else _LoopCell(m)
            parent, _, attr = name.rpartition(".")
            if not name:
                return new.double().eval()
            setattr(model.get_submodule(parent) if parent else model, attr, new.double())
    return model


# --------------------------------------------------------------------------- probing


@dataclass
class _Call:
    """One call of an activation module during a forward pass."""

    module: nn.Module
    layout: str  # "element" [B, ...], "sequence" [B, T, ...], "merged" [B*T, ...]
    width: int  # values per sample and element


class Recorder:
    """Hooks on every activation module: records the calls, or overrides their outputs."""

    def __init__(self, model):
        self.mods = [m for m in model.modules() if isinstance(m, _ACT)]
        self.calls: list[tuple[nn.Module, tuple, torch.Tensor]] = []
        self.override = None  # callable(call index, output) -> output
        self.handles = [m.register_forward_hook(self._hook) for m in self.mods]

    def _hook(self, module, inputs, output):
        k = len(self.calls)
        self.calls.append((module, tuple(output.shape), inputs[0].detach().clone()))
        if self.override is not None:
            return self.override(k, output)
        return None

    def run(self, model, x, override=None):
        """``model(x)`` in float64, its own ``torch.zeros(batch, H)`` states too (float32
        by default: "mat1 and mat2 must have the same dtype")."""
        self.calls, self.override = [], override
        dtype = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            with torch.no_grad():
                y = model(x)
        finally:
            torch.set_default_dtype(dtype)
        if isinstance(y, tuple):
            y = y[0]
        return y

    def close(self):
        for h in self.handles:
            h.remove()


def _layout(shape3, shape4, batch) -> str:
    if shape3 == shape4:
        return "element"
    if len(shape3) >= 2 and shape3[0] == batch and shape3[1] == 3 and shape4[1] == 4:
        return "sequence"
    if shape3[0] == 3 * batch and shape4[0] == 4 * batch:
        return "merged"
    raise NetworkError(f"model: an activation's output shape {shape3} changes with the "
                       f"sequence length in a way not understood (expected [batch, ...], "
                       f"[batch, T, ...] or [batch*T, ...])")


@dataclass
class Spec:
    """The recurrence read from a model: slot ``p`` computes, at every element,
    ``act_p(w_in[p] @ source + w_rec[p] @ own_previous + bias[p])``; the tail (read-out)
    after the last element."""

    slots: list[dict]  # per element layer: w_in, w_rec (or None), bias, module, source
    tail: list[dict]  # read-out layers: w, bias, module
    out_w: np.ndarray | None  # final affine read-out after the last activation, or None
    out_b: np.ndarray | None


def read(model: nn.Module, element_shape: tuple) -> tuple[nn.Module, Spec]:
    """Probe ``model`` (see the module docstring); returns the loop copy and the spec.

    Raises
    ------
    NetworkError : a structure the QRNN cannot express (named)
    """
    check_supported(model)
    loops = _as_loops(model)
    rec = Recorder(loops)
    try:
        return loops, _probe(loops, rec, tuple(element_shape))
    finally:
        rec.close()


def _probe(model, rec: Recorder, eshape: tuple) -> Spec:
    B = 2
    x3 = torch.zeros((B, 3) + eshape, dtype=torch.float64)
    x4 = torch.zeros((B, 4) + eshape, dtype=torch.float64)
    try:
        rec.run(model, x3)
        c3 = [(m, s) for m, s, _ in rec.calls]
        rec.run(model, x4)
        c4 = [(m, s) for m, s, _ in rec.calls]
    except NetworkError:
        raise
    except Exception as e:
        raise NetworkError(f"model: cannot be run on [batch, T, {eshape}] sequences ({e})") from e
    if not rec.mods:
        raise NetworkError(f"model: no nn.ReLU or QCFS module found; the recurrence's "
                           f"activation must be a module (not torch.relu); {INSTEAD}")
    per = len(c4) - len(c3)
    # calls: [pre-loop sequence-wide calls] [per element x T] [tail]
    n_pre = 0
    while n_pre < min(len(c3), len(c4)) and c3[n_pre][1] != c4[n_pre][1]:
        n_pre += 1
    if per <= 0:
        raise NetworkError("model: no nn.ReLU or QCFS module is called once per element of the "
                           "sequence (its second dimension); the recurrence's activation must "
                           f"be such a module, not torch.relu; {INSTEAD}")
    if per:
        body3, body4 = c3[n_pre:n_pre + 3 * per], c4[n_pre:n_pre + 4 * per]
        if any(body4[i][0] is not body4[i % per][0] for i in range(4 * per)) or \
                [m for m, _ in body3] != [m for m, _ in body4[:3 * per]]:
            raise NetworkError("model: the per-element layers do not repeat in the same order "
                               "at every element")
    tail3, tail4 = c3[n_pre + 3 * per:], c4[n_pre + 4 * per:]
    if [m for m, _ in tail3] != [m for m, _ in tail4] or any(
            a[1] != b[1] for a, b in zip(tail3, tail4)):
        raise NetworkError("model: layers after the loop change with the sequence length")
    slots = []
    for i in range(n_pre):
        lay = _layout(c3[i][1], c4[i][1], B)
        width = int(np.prod(c3[i][1][2:] if lay == "sequence" else c3[i][1][1:]))
        slots.append(_Call(c3[i][0], lay, width))
    for i in range(per):
        m, s = c3[n_pre + i]
        slots.append(_Call(m, "element", int(np.prod(s[1:]))))
    tail = [_Call(m, "element", int(np.prod(s[1:]))) for m, s in tail3]
    return _identify(model, rec, eshape, slots, n_pre, per, tail)


def _identify(model, rec, eshape, slots, n_pre, per, tail) -> Spec:
    """Override activation outputs with basis vectors, read the pre-activations."""
    T = 3
    F = int(np.prod(eshape))
    widths = [s.width for s in slots]
    # probe rows: 0: zeros; then x_t basis for t in 0..T-1; then slot p at t basis; tail basis
    rows = [("zero",)]
    rows += [("x", t, i) for t in range(T) for i in range(F)]
    rows += [("slot", p, t, i) for p in range(len(slots)) for t in range(T)
             for i in range(widths[p])]
    rows += [("tail", r, i) for r in range(len(tail)) for i in range(tail[r].width)]
    n = len(rows)
    x = torch.zeros((n, T, F), dtype=torch.float64)
    forced = {}  # (kind, index, t) -> [n, width] outputs
    for p in range(len(slots)):
        for t in range(T):
            forced[("slot", p, t)] = torch.zeros(n, widths[p], dtype=torch.float64)
    for r in range(len(tail)):
        forced[("tail", r, 0)] = torch.zeros(n, tail[r].width, dtype=torch.float64)
    for k, row in enumerate(rows):
        if row[0] == "x":
            x[k, row[1], row[2]] = 1.0
        elif row[0] == "slot":
            forced[("slot", row[1], row[2])][k, row[3]] = 1.0
        elif row[0] == "tail":
            forced[("tail", row[1], 0)][k, row[2]] = 1.0
    order = _call_order(slots, n_pre, per, tail, T)

    def override(k, out):
        key = order[k]
        slot = slots[key[1]] if key[0] == "slot" else None
        if slot is not None and slot.layout != "element":
            v = torch.stack([forced[("slot", key[1], t)] for t in range(T)], 1)
            v = v.reshape((n, T) + tuple(out.shape[2:])) if slot.layout == "sequence" \
                else v.reshape((n * T,) + tuple(out.shape[1:]))
            return v.to(out.dtype)
        return forced[key].reshape(out.shape).to(out.dtype)

    y = rec.run(model, x.reshape((n, T) + eshape), override)
    pres = {}
    for k, (_, _, inp) in enumerate(rec.calls):
        key = order[k]
        if key[0] == "slot" and slots[key[1]].layout != "element":
            v = inp.reshape(n, T, -1) if slots[key[1]].layout == "sequence" else \
                inp.reshape(n, T, -1)
            for t in range(T):
                pres[("slot", key[1], t)] = v[:, t]
        else:
            pres[key] = inp.reshape(n, -1)
    return _assemble(rows, pres, y.reshape(n, -1), slots, tail, T, F)


def _call_order(slots, n_pre, per, tail, T):
    order = [("slot", p, -1) for p in range(n_pre)]
    order += [("slot", n_pre + i, t) for t in range(T) for i in range(per)]
    order += [("tail", r, 0) for r in range(len(tail))]
    return order


def _assemble(rows, pres, y, slots, tail, T, F) -> Spec:
    """Coefficients from the probe rows; checks time invariance and the QRNN's shape."""
    idx = {r: k for k, r in enumerate(rows)}

    def coef(key, src):  # pre-activation ``key`` per unit of source ``src``: [out, in]
        base = pres[key][idx[("zero",)]]
        ks = [idx[src + (i,)] for i in range(_width(src, slots, tail, F))]
        return (pres[key][ks] - base).T.numpy()

    tol = 1e-9
    out_slots = []
    for p, s in enumerate(slots):
        key = ("slot", p, T - 1)
        bias = pres[key][idx[("zero",)]].numpy()
        srcs = {}
        for q in range(len(slots)):
            for dt in (0, 1, 2):
                t = T - 1 - dt
                if dt == 0 and q >= p:
                    continue
                c = coef(key, ("slot", q, t))
                if np.abs(c).max(initial=0) > tol:
                    srcs[(q, dt)] = c
        for dt in (0, 1, 2):
            c = coef(key, ("x", T - 1 - dt))
            if np.abs(c).max(initial=0) > tol:
                srcs[("x", dt)] = c
        # the same map at every element (compared with element T-2), from a zero state
        key2 = ("slot", p, T - 2)
        same = np.allclose(pres[key2][idx[("zero",)]].numpy(), bias, atol=1e-9)
        for (q, dt), c in srcs.items():
            if T - 2 - dt >= 0:
                src = ("x", T - 2 - dt) if q == "x" else ("slot", q, T - 2 - dt)
                same = same and np.allclose(coef(key2, src), c, atol=1e-9)
        if not same:
            raise NetworkError(f"model: layer {p} ({_name(s)}) does not compute the same map "
                               f"at every element")
        if not np.allclose(pres[("slot", p, 0)][idx[("zero",)]].numpy(), bias, atol=1e-9):
            raise NetworkError(f"model: layer {p} ({_name(s)}) starts from a state that is not "
                               f"zero (an initial hidden state); the converted network starts "
                               f"from zero")
        out_slots.append({"bias": bias, "srcs": srcs, "module": s.module, "width": s.width})
    spec_slots = _chain(out_slots, slots)
    tails = []
    for r, tcall in enumerate(tail):
        key = ("tail", r, 0)
        srcs = {}
        for q in range(len(slots)):
            c = coef(key, ("slot", q, T - 1))
            if np.abs(c).max(initial=0) > tol:
                srcs[q] = c
        for q in range(r):
            c = coef(key, ("tail", q))
            if np.abs(c).max(initial=0) > tol:
                srcs[("t", q)] = c
        want = ("t", r - 1) if r else len(slots) - 1
        if set(srcs) - {want}:
            raise NetworkError(f"model: read-out layer {_name(tcall)} takes inputs other than "
                               f"the layer before it (skip connections are not supported)")
        tails.append({"w": srcs.get(want, np.zeros((tcall.width, 1))),
                      "bias": pres[key][idx[("zero",)]].numpy(), "module": tcall.module})
    # the model's output from the last activation
    last = ("tail", len(tail) - 1) if tail else ("slot", len(slots) - 1, T - 1)
    base = y[idx[("zero",)]]
    w_out = (y[[idx[last + (i,)] for i in range(_width(last, slots, tail, F))]] - base).T.numpy()
    is_id = w_out.shape[0] == w_out.shape[1] and np.allclose(w_out, np.eye(len(w_out))) and \
        np.allclose(base.numpy(), 0)
    return Spec(spec_slots, tails, None if is_id else w_out, None if is_id else base.numpy())


def _width(src, slots, tail, F):
    if src[0] == "x":
        return F
    if src[0] == "slot":
        return slots[src[1]].width
    return tail[src[1]].width


def _name(call) -> str:
    return type(call.module).__name__


def _chain(out_slots, slots) -> list[dict]:
    """Check the QRNN's shape: features (no recurrence) first, then recurrent layers; each
    layer reads the element (first) or the layer below at the same element, and its own
    previous output."""
    res = []
    for p, s in enumerate(out_slots):
        want_in = ("x", 0) if p == 0 else (p - 1, 0)
        extra = set(s["srcs"]) - {want_in, (p, 1)}
        if extra:
            raise NetworkError(f"model: layer {p} ({_name(slots[p])}) also reads "
                               f"{sorted(map(str, extra))}: only the layer below at the same "
                               f"element and its own previous output are supported")
        w_in = s["srcs"].get(want_in)
        if w_in is None:
            raise NetworkError(f"model: layer {p} ({_name(slots[p])}) does not read the layer "
                               f"below")
        w_rec = s["srcs"].get((p, 1))
        if res and res[-1]["w_rec"] is not None and w_rec is None:
            raise NetworkError(f"model: layer {p} ({_name(slots[p])}) is a feed-forward layer "
                               f"after a recurrent one; per-element features must come first")
        res.append({"w_in": w_in, "w_rec": w_rec, "bias": s["bias"], "module": s["module"]})
    if not any(s["w_rec"] is not None for s in res):
        raise NetworkError("model: no layer reads its own previous output; nothing recurrent")
    return res
