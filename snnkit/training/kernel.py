"""The training kernel (``_train_kernels.c``): built and loaded as :mod:`snnkit.kernels` builds
the simulator's, with thin typed wrappers around its entry points.

The wrappers take torch tensors (contiguous, on the CPU) and check dtypes and shapes, so a
mistake in the caller fails here with a message instead of reading stray memory.
"""

from __future__ import annotations

import ctypes
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import kernels

SOURCE = Path(__file__).with_name("_train_kernels.c")
INCLUDES = (*kernels.SOURCES, Path(__file__).with_name("_train_neuron.c"),
            Path(__file__).with_name("_train_amx.c"))

_lib = None
_tried = False


class TNeuron(ctypes.Structure):
    """``tneuron_t`` of _train_kernels.c."""

    _fields_ = ([(k, ctypes.c_void_p) for k in ("alpha", "beta", "threshold", "v_reset", "bias",
                                                "adapt_plus", "adapt_decay")]
                + [(k, ctypes.c_int) for k in ("has_alpha", "has_bias", "subtract",
                                               "refractory", "adaptive", "decay_bits")]
                + [("lo", ctypes.c_double), ("hi", ctypes.c_double), ("lsb", ctypes.c_double),
                   ("surrogate", ctypes.c_int), ("slope", ctypes.c_double),
                   ("c1", ctypes.c_void_p), ("c2", ctypes.c_void_p), ("delayed", ctypes.c_int),
                   ("refr", ctypes.c_void_p)])


class TProj(ctypes.Structure):
    """``tproj_t`` of _train_kernels.c: one spiking projection into a population."""

    _fields_ = [("w", ctypes.c_void_p), ("ldw", ctypes.c_int64), ("offsets", ctypes.c_void_p),
                ("idx", ctypes.c_void_p), ("delay", ctypes.c_int64), ("row0", ctypes.c_int64),
                ("own", ctypes.c_int64), ("S", ctypes.c_int64)]


def load():
    """The loaded library, built on first use; None (after one warning) when it cannot be
    built, or when ``SNNKIT_KERNELS=0`` selects the torch path."""
    global _lib, _tried
    if not kernels.enabled():
        return None
    if not _tried:
        _tried = True
        try:
            path = kernels.build(source=SOURCE, includes=INCLUDES)
            try:
                _lib = _bind(ctypes.CDLL(str(path)))
            except OSError:  # a damaged cache entry: build it again, once
                path.unlink(missing_ok=True)
                _lib = _bind(ctypes.CDLL(str(kernels.build(source=SOURCE,
                                                           includes=INCLUDES))))
        except (OSError, RuntimeError) as e:
            warnings.warn(f"snnkit: training kernel unavailable ({e}); using the slower torch "
                          f"path", RuntimeWarning, stacklevel=3)
    return _lib


def _bind(lib):
    kernels.share_threads(lib)
    p, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    tn = ctypes.POINTER(TNeuron)
    lib.snn_train_forward.argtypes = [c_int, c_int, i64, i64, i64, i64, c_int,
                                      ctypes.POINTER(TProj), p, tn] + [p] * 16 + [c_int, c_int]
    lib.snn_train_backward.argtypes = [c_int, i64, i64, i64, tn, p, i64] + [p] * 11 + [i64] \
        + [p] * 6 + [c_int]
    lib.snn_train_count.argtypes = [c_int, p, i64, i64, p, c_int]
    lib.snn_train_count.restype = i64
    lib.snn_train_fill.argtypes = [c_int, p, i64, i64, i64, p, p, c_int]
    lib.snn_train_transpose.argtypes = [i64, i64, i64, i64, p, p, p, p]
    lib.snn_train_wgrad.argtypes = [i64, i64, i64, p, p, p, p, c_int, c_int]
    lib.snn_train_wgrad_rows.argtypes = [i64] * 6 + [p] * 4 + [c_int]
    lib.snn_train_wgrad_amx.argtypes = [i64] * 6 + [p] * 4 + [c_int, c_int]
    lib.snn_train_amx_runs.restype = i64
    lib.snn_train_amx_available.restype = c_int
    for f in ("snn_train_forward", "snn_train_backward", "snn_train_fill", "snn_train_wgrad",
              "snn_train_transpose", "snn_train_wgrad_rows", "snn_train_wgrad_amx"):
        getattr(lib, f).restype = c_int
    return lib


def _ptr(t: torch.Tensor | None, dtype=None):
    if t is None:
        return None
    if not t.is_contiguous() or t.device.type != "cpu" or (dtype and t.dtype != dtype):
        raise ValueError(f"training kernel: expected a contiguous CPU {dtype} tensor, got "
                         f"{t.dtype} {tuple(t.shape)} on {t.device}")
    return t.data_ptr()


def _threads(work: int) -> int:
    """Threads for ``work`` element updates: starting a thread costs about as much as
    ~100k updates, so small populations (a digits batch) run on the caller's thread."""
    return max(1, min(torch.get_num_threads(), work // (1 << 17)))


def _check(rc: int, what: str) -> None:
    if rc == -1:
        raise MemoryError(f"snnkit training kernel ({what}): out of memory")
    if rc:
        raise RuntimeError(f"snnkit training kernel ({what}): failed with code {rc}")


def neuron_struct(params: dict[str, torch.Tensor], flags: dict, keep: list,
                  refractory: torch.Tensor | None = None) -> TNeuron:
    """``tneuron_t`` from contiguous ``[N]`` parameter tensors (kept alive in ``keep``);
    ``c1`` / ``c2`` (reset="delayed") may be missing or None. ``refractory``: the periods per
    neuron (int32 ``[N]``), or None: ``flags["refractory"]`` for all."""
    n, ptrs = params["threshold"].shape[0], {}
    if refractory is not None:
        if refractory.dtype != torch.int32 or tuple(refractory.shape) != (n,):
            raise ValueError(f"training kernel: refractory periods {refractory.dtype} "
                             f"{tuple(refractory.shape)} for {n} neurons")
        refractory = refractory.contiguous()
        keep.append(refractory)
        flags = dict(flags, refractory=int(bool((refractory != 0).any())))
        ptrs["refr"] = refractory.data_ptr()
    for k in ("alpha", "beta", "threshold", "v_reset", "bias", "adapt_plus", "adapt_decay",
              "c1", "c2"):
        if params.get(k) is None:
            continue
        t = params[k].detach().contiguous()
        keep.append(t)
        ptrs[k] = t.data_ptr()
    if flags.get("delayed") and not ("c1" in ptrs and "c2" in ptrs):
        raise ValueError("training kernel: reset='delayed' needs c1 and c2")
    return TNeuron(**ptrs, **flags)


def forward(lib, dbl: bool, t0: int, projs, dense, neuron: TNeuron, state, spikes, h=None,
            flags=None, vprev=None, iprev=None, rec=(None, None, None), bits=None,
            own=None, stage: bool = False) -> None:
    """Steps ``t0 .. t0 + T - 1`` of one population (``T, B, N = spikes.shape``): the input
    from ``projs`` (:class:`Projection`s, the weights of one kind: float32 with ``dbl=False``,
    int8 / int16 with the fixed point, ``dbl=True``) plus ``dense`` ``[T, B, N]`` or None,
    then the neuron update. ``state = (v, i, theta, refrac)`` ``[B, N]`` is updated in place;
    the other outputs ``[T, B, N]`` are written, and ``bits`` (uint8 ``[T * B, nb]``, see
    :func:`bits_bytes`) the spikes as bits. ``own = (offsets, idx, xin)``: the event lists
    of all steps (offsets ``[T * B + 1]``, idx with room for every spike: memory no spike
    fills is never touched, so never mapped; rows from step 0) the population's own spikes are
    written to step by step (from ``bits``; ``bits=None``: they are there already), which its
    self projections (``Projection(..., own=True)`` on them) read, and scratch for the other
    inputs' sums (``T * B * N`` elements of 4 bytes: float32, int32 in fixed point).
    ``stage`` (float32 weights): each block of columns copies its part of the weights from
    other populations into a compact aligned buffer first and sums from there (the weights
    unpadded, as the parameters are stored: no padded copy of them is needed); where the
    events are fewer than the weight rows, the copy does not pay and is not made."""
    T, B, N = spikes.shape
    if bits is not None and tuple(bits.shape) != (T * B, bits_bytes(N)):
        raise ValueError(f"training kernel: bits {tuple(bits.shape)} for [{T} x {B}, {N}]")
    if any(pr.own for pr in projs) and (own is None or any(
            pr.offsets.data_ptr() != own[0].data_ptr() or pr.row0 for pr in projs if pr.own)
            or own[0].shape[0] < (t0 + T) * B + 1 or own[1].shape[0] < (t0 + T) * B * N
            or own[2].numel() != T * B * N or own[2].element_size() != 4):
        raise ValueError("training kernel: self projections need the own lists and scratch")
    dt = torch.float64 if dbl else torch.float32
    kinds = {kernels.KINDS[pr.w.dtype] for pr in projs}
    if len(kinds) > 1 or (kinds and (0 in kinds) == dbl):
        raise ValueError(f"training kernel: weights {[pr.w.dtype for pr in projs]} with "
                         f"{'fixed' if dbl else 'float'} arithmetic")
    arr = (TProj * max(1, len(projs)))(*(pr.struct(B, N) for pr in projs))
    v, i, th, r = state
    args = [_ptr(dense, dt), ctypes.byref(neuron), _ptr(v, dt), _ptr(i, dt), _ptr(th, dt),
            _ptr(r, torch.int32), _ptr(spikes, dt), _ptr(h, dt), _ptr(flags, torch.uint8),
            _ptr(vprev, dt), _ptr(iprev, dt), *(_ptr(t, dt) for t in rec),
            _ptr(bits, torch.uint8),
            *((None, None, None) if own is None else (_ptr(own[0], torch.int64),
                                                       _ptr(own[1], torch.int32),
                                                       _ptr(own[2])))]
    # the work: the updates and the event sums (the events: about the lists' room, exact
    # where they hold these steps' rows)
    other = [pr for pr in projs if not pr.own]
    events = sum(pr.idx.numel() for pr in projs)
    if stage:  # a weight row copied is worth it once rows are read more than once
        stage = sum(pr.idx.numel() for pr in other) >= 2 * sum(pr.w.shape[0] for pr in other)
    _check(lib.snn_train_forward(int(dbl), kinds.pop() if kinds else int(dbl), t0, T, B, N,
                                 len(projs), arr, *args, int(stage),
                                 _threads(T * B * N + events * (-(-N // 16) * 16))),
           "forward")


def pack_bits(x: torch.Tensor) -> torch.Tensor:
    """Spikes ``x`` ``[rows, n]`` (0 / nonzero, any dtype, on the CPU) as :func:`forward`
    writes them: uint8 ``[rows, bits_bytes(n)]``, lsb first."""
    rows, n = x.shape
    a = x.numpy() if x.dtype in (torch.bool, torch.uint8) else (x != 0).numpy()
    out = np.zeros((rows, bits_bytes(n)), dtype=np.uint8)
    out[:, :-(-n // 8)] = np.packbits(a, axis=1, bitorder="little")
    return torch.from_numpy(out)


def bits_bytes(n: int) -> int:
    """Bytes per row of :func:`forward`'s spike bits: 16 bits per 2 bytes."""
    return -(-n // 16) * 2


class Projection:
    """A spiking projection as the kernel reads it: weights ``w`` ``[S, ldw]`` (float32
    ``ldw = N`` unpadded; int8 / int16 padded by :func:`snnkit.kernels.pad_weights`), the
    source's event lists by row ``(offsets, idx)`` from row ``row0`` (step x batch + sample)
    on, and the delay."""

    def __init__(self, w: torch.Tensor, offsets: torch.Tensor, idx: torch.Tensor, delay: int,
                 row0: int = 0, own: bool = False):
        if w.dim() != 2 or w.stride(1) != 1 or offsets.dtype != torch.int64 \
                or idx.dtype != torch.int32:
            raise ValueError(f"training kernel: projection weights {tuple(w.shape)} {w.dtype}, "
                             f"lists {offsets.dtype} / {idx.dtype}")
        self.w, self.offsets, self.idx, self.delay = w, offsets, idx, int(delay)
        self.row0, self.own = int(row0), bool(own)

    def struct(self, B: int, N: int) -> TProj:
        if self.w.shape[1] < (N if self.w.dtype == torch.float32 else -(-N // 16) * 16):
            raise ValueError(f"training kernel: weight rows of {self.w.shape[1]} for {N} targets")
        return TProj(self.w.data_ptr(), self.w.stride(0), self.offsets.data_ptr(),
                     self.idx.data_ptr(), self.delay, self.row0, int(self.own), self.w.shape[0])


def backward(lib, dbl: bool, neuron: TNeuron, n: int, gs, grec, h, flags, vprev, iprev,
             carry, gx, gparams) -> None:
    """The time-reversed recurrence (see snn_train_backward) of ``n`` neurons: ``gs``
    ``[T, B, ldg >= n]`` the spikes' gradients, ``grec`` the recorded states' ``[T, B, n]`` or
    None; ``carry = (cv, ci, cth)`` in and out; ``gx`` ``[T * B, ldx >= n]`` out (it may be
    ``gs``, in place); ``gparams = (g_alpha, g_beta, g_thr, g_bias, g_c1, g_c2)`` float64
    ``[n]`` or None, added to (g_c1 / g_c2 need the flags)."""
    T, B, ldg = gs.shape
    dt = torch.float64 if dbl else torch.float32
    if flags is None and any(g is not None for g in gparams[4:]):
        raise ValueError("training kernel: the gradients of c1 / c2 need the flags")
    if gx.dim() != 2 or gx.shape[0] != T * B or min(gx.shape[1], ldg) < n or (
            gx.data_ptr() == gs.data_ptr() and gx.shape[1] != ldg):
        raise ValueError(f"training kernel: gs {tuple(gs.shape)}, gx {tuple(gx.shape)} for "
                         f"[{T} x {B}, {n}]")
    args = [_ptr(gs, dt), ldg, *(_ptr(t, dt) for t in grec), _ptr(h, dt),
            _ptr(flags, torch.uint8), _ptr(vprev, dt), _ptr(iprev, dt),
            *(_ptr(t, dt) for t in carry), _ptr(gx, dt), gx.shape[1],
            *(_ptr(t, torch.float64) for t in gparams)]
    _check(lib.snn_train_backward(int(dbl), T, B, n, ctypes.byref(neuron), *args,
                                  _threads(T * B * n)), "backward")


LIST_KINDS = {torch.uint8: 0, torch.bool: 0, torch.float32: 1, torch.float64: 2}


def event_lists(lib, x: torch.Tensor, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(offsets [rows + 1] int64, idx int32)``: the spiking sources ``j`` of every row of
    ``x`` ``[rows, S]`` (bool or uint8 0/1, or float 0.0/1.0), or with ``n`` of ``n``-column
    spike bits ``x`` ``[rows, bits_bytes(n)]`` uint8 (as :func:`forward` writes them)."""
    rows, S = x.shape
    if x.dtype not in LIST_KINDS or n is not None and (x.dtype != torch.uint8
                                                       or S != bits_bytes(n)):
        raise ValueError(f"training kernel: spikes {tuple(x.shape)} of dtype {x.dtype}")
    kind = 3 if n is not None else LIST_KINDS[x.dtype]
    S = n if n is not None else S
    if x.dtype == torch.bool:
        x = x.view(torch.uint8)
    offsets = torch.empty(rows + 1, dtype=torch.int64)
    count = lib.snn_train_count(kind, _ptr(x), rows, S, offsets.data_ptr(),
                                _threads(rows * S // 4))
    _check(-1 if count < 0 else 0, "count")
    idx = torch.empty(max(count, 1), dtype=torch.int32)
    _check(lib.snn_train_fill(kind, x.data_ptr(), rows, S, 1, offsets.data_ptr(),
                              idx.data_ptr(), _threads(rows * S // 4)), "lists")
    return offsets, idx


WG_ROWS_MAX = 32  # snn_train_wgrad_rows: the most targets


def use_amx() -> str:
    """Whether weight gradients may run on the tile unit (AMX) where the CPU has one:
    ``SNNKIT_TRAIN_AMX=0`` keeps them on the event pass (the fallback, for the tests), ``2``
    takes the tiles whatever the density (for benchmarks), ``1`` (default) where they pay."""
    return os.environ.get("SNNKIT_TRAIN_AMX", "1")


def event_wgrad(lib, offsets: torch.Tensor, idx: torch.Tensor, S: int, r0: int, r1: int,
                lag: int, g: torch.Tensor, out: torch.Tensor, accumulate: bool = False
                ) -> torch.Tensor:
    """``out [S, n] (+)= x^T g``: the weight gradient of a projection from the input gradients
    ``g`` ``[r1 - r0, ld >= n]`` float32 of its target's rows ``[r0, r1)`` and the source's
    event lists by row ``(offsets, idx)``, the source lagging ``lag`` rows (delay x batch):
    for few targets row by row; for many spikes on the CPU's tile unit where it has one (AMX:
    ``g`` in exact 4-byte fixed point per column, exact integer sums, so float32-accurate);
    else from the lists transposed (by source), each source's row summed in registers."""
    rows, ld = g.shape
    n = out.shape[1]
    if rows != r1 - r0 or out.shape[0] != S or ld < n or out.dtype != torch.float32 \
            or not out.is_contiguous():
        raise ValueError(f"training kernel: rows [{r0}, {r1}), gradient {tuple(g.shape)}, "
                         f"output {tuple(out.shape)} {out.dtype}")
    if n <= WG_ROWS_MAX:  # few targets: row by row, no transposed lists
        _check(lib.snn_train_wgrad_rows(r0, r1, lag, S, n, ld, _ptr(offsets, torch.int64),
                                        _ptr(idx, torch.int32), _ptr(g, torch.float32),
                                        out.data_ptr(), int(accumulate)), "weight gradients")
        return out
    s0, s1 = max(0, r0 - lag), r1 - lag
    events = int(offsets[s1] - offsets[s0]) if s1 > s0 else 0
    # from 1/8 of the sources spiking per row on, the tile unit's dense product is faster
    # (784 x 1600 x 1000, one thread: 10 %: 4.9 ms vs the event pass's 4.3; 20 %: 5.6 vs 8.3)
    amx = use_amx()
    if amx == "2" or amx != "0" and events * 8 >= (r1 - r0) * S:
        rc = lib.snn_train_wgrad_amx(r0, r1, lag, S, n, ld, _ptr(offsets, torch.int64),
                                     _ptr(idx, torch.int32), _ptr(g, torch.float32),
                                     out.data_ptr(), int(accumulate), _threads(events * n // 4))
        if rc != -3:  # -3: no tile unit here
            _check(rc, "weight gradients (tile unit)")
            return out
    toff = torch.empty(S + 1, dtype=torch.int64)
    tidx = torch.empty(max(1, events), dtype=torch.int32)
    _check(lib.snn_train_transpose(r0, r1, lag, S, _ptr(offsets, torch.int64),
                                   _ptr(idx, torch.int32), toff.data_ptr(), tidx.data_ptr()),
           "transpose")
    _check(lib.snn_train_wgrad(S, n, ld, toff.data_ptr(), tidx.data_ptr(),
                               _ptr(g, torch.float32), out.data_ptr(), int(accumulate),
                               _threads(events * n // 4)),
           "weight gradients")
    return out
