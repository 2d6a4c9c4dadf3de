"""The training kernel (``_train_kernels.c``): built and loaded as :mod:`snnkit.kernels` builds
the simulator's, with thin typed wrappers around its entry points.

The wrappers take torch tensors (contiguous, on the CPU) and check dtypes and shapes, so a
mistake in the caller fails here with a message instead of reading stray memory.
"""

from __future__ import annotations

import ctypes
import warnings
from pathlib import Path

import torch

from .. import kernels

SOURCE = Path(__file__).with_name("_train_kernels.c")

_lib = None
_tried = False


class TNeuron(ctypes.Structure):
    """``tneuron_t`` of _train_kernels.c."""

    _fields_ = ([(k, ctypes.c_void_p) for k in ("alpha", "beta", "threshold", "v_reset", "bias",
                                                "adapt_plus", "adapt_decay")]
                + [(k, ctypes.c_int) for k in ("has_alpha", "has_bias", "subtract",
                                               "refractory", "adaptive", "decay_bits")]
                + [("lo", ctypes.c_double), ("hi", ctypes.c_double), ("lsb", ctypes.c_double),
                   ("surrogate", ctypes.c_int), ("slope", ctypes.c_double)])


def load():
    """The loaded library, built on first use; None (after one warning) when it cannot be
    built, or when ``SNNKIT_KERNELS=0`` selects the torch path."""
    global _lib, _tried
    if not kernels.enabled():
        return None
    if not _tried:
        _tried = True
        try:
            path = kernels.build(source=SOURCE, includes=kernels.SOURCES)
            try:
                _lib = _bind(ctypes.CDLL(str(path)))
            except OSError:  # a damaged cache entry: build it again, once
                path.unlink(missing_ok=True)
                _lib = _bind(ctypes.CDLL(str(kernels.build(source=SOURCE,
                                                           includes=kernels.SOURCES))))
        except (OSError, RuntimeError) as e:
            warnings.warn(f"snnkit: training kernel unavailable ({e}); using the slower torch "
                          f"path", RuntimeWarning, stacklevel=3)
    return _lib


def _bind(lib):
    p, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    tn = ctypes.POINTER(TNeuron)
    lib.snn_train_forward.argtypes = [c_int, i64, i64, i64, p, tn] + [p] * 12 + [c_int]
    lib.snn_train_backward.argtypes = [c_int, i64, i64, i64, tn] + [p] * 12 + [i64] + [p] * 4 \
        + [c_int]
    lib.snn_train_count.argtypes = [c_int, p, i64, i64, p, c_int]
    lib.snn_train_count.restype = i64
    lib.snn_train_fill.argtypes = [c_int, p, i64, i64, i64, p, p, c_int]
    lib.snn_train_sum.argtypes = [c_int, i64, i64, p, p, p, p, c_int]
    lib.snn_train_wgrad.argtypes = [i64, i64, i64, p, p, p, p, c_int, c_int]
    lib.snn_train_transpose.argtypes = [i64, i64, i64, i64, p, p, p, p]
    for f in ("snn_train_forward", "snn_train_backward", "snn_train_fill", "snn_train_sum",
              "snn_train_wgrad", "snn_train_transpose"):
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


def neuron_struct(params: dict[str, torch.Tensor], flags: dict, keep: list) -> TNeuron:
    """``tneuron_t`` from contiguous ``[N]`` parameter tensors (kept alive in ``keep``)."""
    ptrs = {}
    for k in ("alpha", "beta", "threshold", "v_reset", "bias", "adapt_plus", "adapt_decay"):
        t = params[k].detach().contiguous()
        keep.append(t)
        ptrs[k] = t.data_ptr()
    return TNeuron(**ptrs, **flags)


def forward(lib, dbl: bool, x, neuron: TNeuron, state, spikes, h=None, flags=None, vprev=None,
            iprev=None, rec=(None, None, None)) -> None:
    """Run the neuron update over ``x`` ``[T, B, N]``; ``state = (v, i, theta, refrac)``
    ``[B, N]`` is updated in place; the other outputs are written."""
    T, B, N = x.shape
    dt = torch.float64 if dbl else torch.float32
    v, i, th, r = state
    args = [_ptr(x, dt), ctypes.byref(neuron), _ptr(v, dt), _ptr(i, dt), _ptr(th, dt),
            _ptr(r, torch.int32), _ptr(spikes, dt), _ptr(h, dt), _ptr(flags, torch.uint8),
            _ptr(vprev, dt), _ptr(iprev, dt), *(_ptr(t, dt) for t in rec)]
    _check(lib.snn_train_forward(int(dbl), T, B, N, *args, _threads(T * B * N)), "forward")


def backward(lib, dbl: bool, neuron: TNeuron, gs, grec, h, flags, vprev, iprev, carry, gx,
             gparams) -> None:
    """The time-reversed recurrence (see snn_train_backward); ``carry = (cv, ci, cth)`` in and
    out; ``gx`` ``[T * B, ld >= N]`` out; ``gparams = (g_alpha, g_beta, g_thr, g_bias)``
    float64 ``[N]`` or None, added to."""
    T, B, N = gs.shape
    dt = torch.float64 if dbl else torch.float32
    if gx.dim() != 2 or gx.shape[0] != T * B or gx.shape[1] < N:
        raise ValueError(f"training kernel: gx {tuple(gx.shape)} for [{T} x {B}, {N}]")
    args = [_ptr(gs, dt), *(_ptr(t, dt) for t in grec), _ptr(h, dt), _ptr(flags, torch.uint8),
            _ptr(vprev, dt), _ptr(iprev, dt), *(_ptr(t, dt) for t in carry), _ptr(gx, dt),
            gx.shape[1], *(_ptr(t, torch.float64) for t in gparams)]
    _check(lib.snn_train_backward(int(dbl), T, B, N, ctypes.byref(neuron), *args,
                                  _threads(T * B * N)), "backward")


LIST_KINDS = {torch.uint8: 0, torch.bool: 0, torch.float32: 1, torch.float64: 2}


def event_lists(lib, x: torch.Tensor, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(offsets [rows + 1] int64, idx int32)``: the spiking sources of every row of ``x``
    ``[rows, S]`` (bool or uint8 0/1, or float 0.0/1.0) as offsets ``j * stride`` into padded
    weight rows."""
    rows, S = x.shape
    if x.dtype not in LIST_KINDS:
        raise ValueError(f"training kernel: spikes of dtype {x.dtype}")
    kind = LIST_KINDS[x.dtype]
    if x.dtype == torch.bool:
        x = x.view(torch.uint8)
    offsets = torch.empty(rows + 1, dtype=torch.int64)
    n = lib.snn_train_count(kind, _ptr(x), rows, S, offsets.data_ptr(), _threads(rows * S // 4))
    _check(-1 if n < 0 else 0, "count")
    idx = torch.empty(max(n, 1), dtype=torch.int32)
    _check(lib.snn_train_fill(kind, x.data_ptr(), rows, S, stride, offsets.data_ptr(),
                              idx.data_ptr(), _threads(rows * S // 4)), "lists")
    return offsets, idx


def event_sum(lib, offsets: torch.Tensor, idx: torch.Tensor, wt: torch.Tensor,
              n: int, out: torch.Tensor) -> torch.Tensor:
    """``out [rows, n]`` = sums of the padded weight rows ``wt`` ``[S, Np]`` (float32 ->
    float32, int8/int16 -> exact int32) of each row's events (rows = ``len(offsets) - 1``)."""
    rows = offsets.shape[0] - 1
    kind = kernels.KINDS[wt.dtype]
    if tuple(out.shape) != (rows, n) or out.dtype != (torch.float32 if kind == 0
                                                      else torch.int32):
        raise ValueError(f"training kernel: sums into {out.dtype} {tuple(out.shape)}")
    _check(lib.snn_train_sum(kind, rows, n, _ptr(offsets, torch.int64), _ptr(idx, torch.int32),
                             _ptr(wt), _ptr(out), _threads(len(idx) * n // 4)), "sums")
    return out


def event_wgrad(lib, offsets: torch.Tensor, idx: torch.Tensor, S: int, stride: int,
                g: torch.Tensor, n: int, out: torch.Tensor, accumulate: bool = False
                ) -> torch.Tensor:
    """``out [S, n] = x^T g[:, :n]`` (``+=`` with ``accumulate``) for the events of
    ``(offsets, idx)`` (offsets ``j * stride``) and ``g [rows, ld]`` float32 (``ld`` padded
    as :func:`kernels.pad_weights`)."""
    rows, ld = g.shape
    if offsets.shape[0] != rows + 1 or tuple(out.shape) != (S, n) or ld < n:
        raise ValueError(f"training kernel: {offsets.shape[0] - 1} event rows, gradient "
                         f"{tuple(g.shape)}, output {tuple(out.shape)}")
    toff = torch.empty(S + 1, dtype=torch.int64)
    tidx = torch.empty(max(1, int(offsets[-1] - offsets[0])), dtype=torch.int32)
    _check(lib.snn_train_transpose(rows, S, stride, ld, _ptr(offsets, torch.int64),
                                   _ptr(idx, torch.int32), toff.data_ptr(), tidx.data_ptr()),
           "transpose")
    _check(lib.snn_train_wgrad(S, n, ld, toff.data_ptr(), tidx.data_ptr(),
                               _ptr(g, torch.float32), _ptr(out, torch.float32),
                               int(accumulate), _threads(len(tidx) * n // 4)),
           "weight gradients")
    return out
