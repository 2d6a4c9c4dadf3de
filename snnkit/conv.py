"""Convolution projections: one shared kernel slid over a ``[C, H, W]`` source.

A convolution projection keeps its kernel ``[C_out, C_in/groups, kH, kW]`` (as
``torch.nn.Conv2d``) instead of a ``[target, source]`` matrix: 2x34x34 -> 16x32x32 with a 3x3
kernel is 288 weights, not 38 million. Populations are flattened channel-major
(``index = (c*H + y)*W + x``, as ``torch.flatten``). The simulators sum through
:func:`conv_sum` (float, or exact integers in fixed point); on the CPU kernel a population
fed by one convolution of sparse spikes runs with the sums fused into its neuron update
(:func:`fused_layer`). The hardware, which stores one weight word per (source, target) pair,
gets :meth:`Conv.dense`.
"""

from __future__ import annotations

import contextlib
import ctypes
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import kernels
from .errors import NetworkError

EVENT_SOURCE = Path(__file__).with_name("_conv_kernel.c")
# sum event by event where at most this share of the sources spike: the events do (share x
# the dense multiply-adds) in vector adds of C_out/groups lanes, scattered over the outputs.
# Measured break-even with oneDNN's convolution (1 thread): ~20-25% for 16 -> 32 channels,
# 3x3, stride 2 on 15x15; beyond 45% for 2 -> 16, 5x5 and for 16 -> 16, 3x3, stride 1
EVENT_DENSITY = 0.25


def pair(x, label: str, lo: int) -> tuple[int, int]:
    """An int or a pair of ints (each >= ``lo``) as a pair; NetworkError naming ``label``."""
    v = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x).reshape(-1)
    if v.size not in (1, 2) or not all(float(i).is_integer() for i in v):
        raise NetworkError(f"{label}: must be an integer or a pair of integers, got {x!r}")
    out = tuple(int(i) for i in np.broadcast_to(v, (2,)))
    if min(out) < lo:
        raise NetworkError(f"{label}: must be >= {lo}, got {out}")
    return out


@dataclass(frozen=True)
class Conv:
    """The geometry of a 2-D convolution from ``in_shape`` to ``out_shape`` (both [C, H, W])."""

    in_shape: tuple[int, int, int]
    out_shape: tuple[int, int, int]
    kernel: tuple[int, int]  # kH, kW
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)  # zeros on each side
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    @classmethod
    def make(cls, in_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
             where: str = "conv") -> Conv:
        """Check the parameters against the source shape and derive the output shape.

        Raises
        ------
        NetworkError : a kernel that is not 4-D, channels that do not divide into ``groups``
            or do not match the source, a kernel larger than the padded source
        """
        if len(weight_shape) != 4:
            raise NetworkError(f"{where}.weight: a convolution kernel is [C_out, C_in/groups, "
                               f"kH, kW], got shape {tuple(weight_shape)}")
        if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
            raise NetworkError(f"{where}.groups: must be an integer >= 1, got {groups!r}")
        co, ci_g, kh, kw = (int(x) for x in weight_shape)
        c, h, w = in_shape
        if c != ci_g * groups:
            raise NetworkError(f"{where}.weight: {ci_g} input channels per group x {groups} "
                               f"groups = {ci_g * groups}, but the source has {c} channels")
        if co % groups:
            raise NetworkError(f"{where}.groups: {co} output channels do not divide into "
                               f"{groups} groups")
        st, pad, dil = (pair(stride, f"{where}.stride", 1), pair(padding, f"{where}.padding", 0),
                        pair(dilation, f"{where}.dilation", 1))
        oh = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // st[0] + 1
        ow = (w + 2 * pad[1] - dil[1] * (kw - 1) - 1) // st[1] + 1
        if min(kh, kw) < 1 or oh < 1 or ow < 1:
            raise NetworkError(f"{where}.weight: a {kh}x{kw} kernel (dilation {dil}) does not "
                               f"fit the {h}x{w} source padded by {pad}")
        return cls((c, h, w), (co, oh, ow), (kh, kw), st, pad, dil, int(groups))

    @property
    def fan_in(self) -> int:
        """Most synapses into one target neuron."""
        return self.in_shape[0] // self.groups * self.kernel[0] * self.kernel[1]

    def options(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": self.groups}

    def n_synapses(self) -> int:
        """(target, source) pairs joined by a kernel tap (taps on padding excluded)."""
        ones = torch.ones((1,) + self.in_shape, dtype=torch.float64)
        k = torch.ones((self.out_shape[0], self.in_shape[0] // self.groups) + self.kernel,
                       dtype=torch.float64)
        return int(F.conv2d(ones, k, **self.options()).sum())

    def dense(self, kernel: np.ndarray) -> np.ndarray:
        """The ``[target, source]`` matrix of ``kernel`` (zeros where no tap joins a pair)."""
        t, s = int(np.prod(self.out_shape)), int(np.prod(self.in_shape))
        out = np.zeros((t, s), dtype=kernel.dtype)
        rows, cols, taps = self._pairs()
        out[rows, cols] = kernel.reshape(-1)[taps]
        return out

    def structure(self) -> np.ndarray:
        """Boolean ``[target, source]``: which synapses exist."""
        t, s = int(np.prod(self.out_shape)), int(np.prod(self.in_shape))
        out = np.zeros((t, s), dtype=bool)
        rows, cols, _ = self._pairs()
        out[rows, cols] = True
        return out

    def _pairs(self):
        """Target index, source index and flat kernel index of every synapse."""
        co, oh, ow = self.out_shape
        c, h, w = self.in_shape
        cg, (kh, kw) = c // self.groups, self.kernel
        o = np.arange(co)[:, None, None, None, None, None]
        y = np.arange(oh)[None, :, None, None, None, None]
        x = np.arange(ow)[None, None, :, None, None, None]
        j = np.arange(cg)[None, None, None, :, None, None]
        ky = np.arange(kh)[None, None, None, None, :, None]
        kx = np.arange(kw)[None, None, None, None, None, :]
        iy = y * self.stride[0] - self.padding[0] + ky * self.dilation[0]
        ix = x * self.stride[1] - self.padding[1] + kx * self.dilation[1]
        ci = (o // (co // self.groups)) * cg + j
        shape = (co, oh, ow, cg, kh, kw)
        ok = np.broadcast_to((iy >= 0) & (iy < h) & (ix >= 0) & (ix < w), shape)
        row = np.broadcast_to((o * oh + y) * ow + x, shape)[ok]
        col = np.broadcast_to((ci * h + iy) * w + ix, shape)[ok]
        tap = np.broadcast_to(((o * cg + j) * kh + ky) * kw + kx, shape)[ok]
        return row, col, tap


def conv_sum(src: torch.Tensor, kernel: torch.Tensor, conv: Conv,
             exact_bound: int | None = None) -> torch.Tensor:
    """Synaptic input ``[N, target]`` from source activity ``src`` ``[N, source]``.

    Binary spikes on the CPU with at most :data:`EVENT_DENSITY` of the sources spiking:
    event by event (``_conv_kernel.c``: each spike adds its kernel columns to the outputs it
    reaches; exact integers in fixed point). Otherwise
    float: ``kernel`` float32, summed by torch's convolution on channels-last frames (oneDNN
    runs those several times faster than channel-major ones at few input channels). Fixed
    point (``exact_bound`` = a bound of any partial sum's magnitude): ``kernel`` holds
    integers, summed as float32 below 2**24 or float64 below 2**53, where every partial sum
    is an integer the format holds exactly whatever the order (NNPACK and cuDNN, which may use
    Winograd or FFT transforms, are switched off: oneDNN runs direct convolutions, CUDA
    im2col and a float64 GEMM), int64 beyond; returns int32 below 2**31, else int64.
    """
    n = src.shape[0]
    out = _event_sum(src, kernel, conv, exact_bound)
    if out is not None:
        return out
    x = src.reshape((n,) + conv.in_shape)
    if exact_bound is None:
        x = x.to(kernel.dtype, memory_format=torch.channels_last)
        with _fp32(x):
            return F.conv2d(x, kernel, **conv.options()).reshape(n, -1)
    dt = (torch.float32 if exact_bound < (1 << 24) else
          torch.float64 if exact_bound < (1 << 53) else torch.int64)
    if x.is_cuda and dt == torch.float32:
        dt = torch.float64
    if dt != torch.int64:
        x = x.to(dt, memory_format=torch.channels_last)
        with _exact(x):
            y = F.conv2d(x, kernel.to(dt), **conv.options())
        # the sums are whole numbers already: converting is exact (and back to channel-major
        # in the same pass)
        it = torch.int32 if exact_bound < (1 << 31) else torch.int64
        return y.to(it, memory_format=torch.contiguous_format).reshape(n, -1)
    cols = F.unfold(x.to(torch.float64), conv.kernel, dilation=conv.dilation,
                    padding=conv.padding, stride=conv.stride).to(torch.int64)
    g, co = conv.groups, conv.out_shape[0]
    cols = cols.reshape(n, g, -1, cols.shape[-1])
    k = kernel.to(torch.int64).reshape(g, co // g, -1)
    y = torch.einsum("gok,ngkl->ngol", k, cols)
    return y.reshape(n, -1)


def _fp32(x: torch.Tensor):
    """Float sums in float32 (cuDNN would use TF32 by default, like no other snnkit path)."""
    if x.is_cuda:
        return torch.backends.cudnn.flags(enabled=True, allow_tf32=False)
    return contextlib.nullcontext()


def _exact(x: torch.Tensor):
    """Only algorithms that multiply and add the integers as they are."""
    if x.is_cuda:
        return torch.backends.cudnn.flags(enabled=False)
    return torch.backends.nnpack.flags(False)


_event_lib = None
_event_tried = False


def _event_kernel():
    """The event-driven convolution library (built on first use, as snnkit.kernels builds its
    own); None when the CPU kernels are off or it cannot be built (torch's convolution then)."""
    global _event_lib, _event_tried
    if not kernels.enabled():
        return None
    if not _event_tried:
        _event_tried = True
        try:
            # it includes _kernels.c (the neuron update), and so the files that one includes
            lib = ctypes.CDLL(str(kernels.build(source=EVENT_SOURCE, includes=kernels.SOURCES)))
            kernels.share_threads(lib)
            p, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
            lib.snn_conv_events.argtypes = [c_int, i64, p, p, p, p, c_int]
            lib.snn_conv_events.restype = c_int
            lib.snn_conv_layer.argtypes = [c_int, i64, i64, p, p, p,
                                           ctypes.POINTER(kernels.NeuronC), i64, p, p, p, p,
                                           c_int]
            lib.snn_conv_layer.restype = c_int
            _event_lib = lib
        except (OSError, RuntimeError) as e:
            warnings.warn(f"snnkit: event-driven convolution unavailable ({e}); using torch's "
                          f"convolution", RuntimeWarning, stacklevel=3)
    return _event_lib


def _sparse(src: torch.Tensor) -> bool:
    """At most :data:`EVENT_DENSITY` of the sources spike (~64 frames spread over the run)."""
    n = src.shape[0]
    probe = src[::max(1, n // 64)]
    return n > 0 and probe.count_nonzero() <= EVENT_DENSITY * probe.numel()


def _geometry(conv: Conv) -> torch.Tensor:
    """The kernels' ``geom``: C, H, W, CO, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, G."""
    return torch.tensor([*conv.in_shape, *conv.out_shape, *conv.kernel, *conv.stride,
                         *conv.padding, *conv.dilation, conv.groups], dtype=torch.int64)


def _event_weights(kernel: torch.Tensor, conv: Conv, dt: torch.dtype) -> torch.Tensor:
    """[C_out, C_in/g, kH, kW] -> [g, C_in/g, kH, kW, C_out/g] = [C_in, kH, kW, C_out/g]: each
    (source channel, tap)'s column of its group's output channels contiguous."""
    g, co = conv.groups, conv.out_shape[0]
    w = kernel.to(dt).reshape((g, co // g) + tuple(kernel.shape[1:]))
    return w.permute(0, 2, 3, 4, 1).contiguous()


def _check(rc: int, what: str) -> None:
    if rc == -1:
        raise MemoryError(f"snnkit {what}: out of memory")
    if rc:
        raise RuntimeError(f"snnkit {what}: failed with code {rc}")


def _event_sum(src, kernel, conv: Conv, exact_bound) -> torch.Tensor | None:
    """:func:`conv_sum` of binary spikes, event by event in C; None where it does not apply
    (not bool spikes on the CPU, sums that may leave int32, dense activity, no kernel)."""
    if src.dtype != torch.bool or src.device.type != "cpu" or kernel.device.type != "cpu":
        return None
    if exact_bound is None and kernel.dtype != torch.float32:
        return None
    if exact_bound is not None and exact_bound >= (1 << 31):
        return None
    if not _sparse(src):
        return None
    lib = _event_kernel()
    if lib is None:
        return None
    n = src.shape[0]
    dt = torch.float32 if exact_bound is None else torch.int32
    w, geom, x = _event_weights(kernel, conv, dt), _geometry(conv), src.contiguous()
    out = torch.empty(n, int(np.prod(conv.out_shape)), dtype=dt)
    _check(lib.snn_conv_events(0 if dt == torch.float32 else 1, n, geom.data_ptr(),
                               x.data_ptr(), w.data_ptr(), out.data_ptr(),
                               torch.get_num_threads()), "convolution kernel")
    return out


def fused_layer(plan, name: str, pr, src: torch.Tensor, steps: int, batch: int,
                record=()) -> tuple[torch.Tensor, dict] | None:
    """Population ``name`` of ``plan`` (:class:`snnkit.plan.Plan`), fed by the convolution
    ``pr`` alone (its source's spikes ``src`` ``[steps, batch, source]`` as they arrive, after
    its delay), over all steps with the sums fused into the neuron update (``snn_conv_layer``):
    per sample and step the frame's event sums go into the update while in cache, with no
    ``[steps, batch, n]`` buffer of sums (the same sums and spikes as :func:`conv_sum`
    feeding the layer kernel). Returns spikes ``[steps, batch, n]`` and the recorded states,
    or None where it does not apply: not a static convolution of sparse binary spikes, int64
    states, bf16, CUDA, or no kernel.
    """
    v0 = plan.v_init[name]
    st = torch.int32 if plan.fixed else torch.float32
    if pr.conv is None or pr.stdp is not None or pr.current or plan.precision != "fp32" or \
            src.dtype != torch.bool or src.device.type != "cpu" or v0.dtype != st or \
            pr.w.device.type != "cpu" or (plan.fixed and pr.bound >= (1 << 31)):
        return None
    src = src.contiguous()
    if not _sparse(src.reshape(steps * batch, -1)):
        return None
    lib = _event_kernel()
    if lib is None:
        return None
    c, block, w, geom = _layer_args(plan, name, pr)
    n = v0.shape[0]
    out = torch.empty(steps, batch, n, dtype=torch.bool)
    rec = {k: torch.empty(steps, batch, n, dtype=st) for k in ("v", "i", "theta")
           if k in record}
    kind = {torch.float32: 0, torch.int32: 1, torch.int16: 2}[w.dtype]
    _check(lib.snn_conv_layer(kind, steps, batch, geom.data_ptr(),
                              src.data_ptr(), w.data_ptr(), ctypes.byref(c), block,
                              out.data_ptr(),
                              *(rec[k].data_ptr() if k in rec else None
                                for k in ("v", "i", "theta")),
                              torch.get_num_threads()), "convolution layer kernel")
    return out, rec


_layer_cache: dict[int, tuple] = {}  # id(projection) -> (weak reference, inputs, arguments)


def _layer_args(plan, name: str, pr):
    """``snn_conv_layer``'s arguments that do not change from run to run, made once per
    projection of a plan (a Simulator's; ~1 ms a run in Python otherwise): the target's
    parameters in channels-last order, the update's block, the kernel's layout, the geometry."""
    params, v0 = plan.neurons[name], plan.v_init[name]
    ref, inputs, got = _layer_cache.get(id(pr), (None, None, None))
    if ref is not None and ref() is pr and all(a is b for a, b in zip(inputs, (params, v0, pr.w))):
        return got
    conv, n = pr.conv, v0.shape[0]
    co, oh, ow = conv.out_shape
    # channels-last position j holds neuron perm[j]: the per-neuron values in that order
    perm = torch.arange(n).reshape(co, oh, ow).permute(1, 2, 0).reshape(-1)

    def cl(t):
        return t[perm] if isinstance(t, torch.Tensor) and t.dim() and t.shape[0] == n else t

    ptr = kernels._Pointers()  # keeps the parameters' copies alive with the struct
    c = kernels.neuron_struct(params._replace(**{k: cl(v) for k, v in params._asdict().items()}),
                              cl(v0), (plan.ar.D, plan.ar.lo, plan.ar.hi) if plan.fixed else None,
                              ptr)
    # values per channel (bias, or alike everywhere): the update runs blocks of ~256 neurons
    # on the first block's parameters, which stay in L1
    per_channel = all(not isinstance(t, torch.Tensor) or t.dim() == 0 or t.numel() != n or
                      bool((t.reshape(co, -1) == t.reshape(co, -1)[:, :1]).all())
                      for t in params._asdict().values())
    block = max(1, 256 // co) * co if per_channel else 0
    # fixed point with every partial sum within int16 and 32 outputs a group (or a multiple):
    # int16 sums (kind 2), one vector add where int32 takes two (~10% off the workload's
    # second layer; with 16 outputs a group, widening them costs more than it saves, unless
    # the narrow LIF's update reads them as they are: ~4% off the first layer)
    wt = torch.int16 if plan.fixed and pr.bound < (1 << 15) and \
        (co // conv.groups) % (16 if c.narrow else 32) == 0 else v0.dtype
    got = (c, block, _event_weights(pr.w, conv, wt), _geometry(conv))
    c.keep = ptr
    key = id(pr)
    _layer_cache[key] = (weakref.ref(pr, lambda _, k=key: _layer_cache.pop(k, None)),
                         (params, v0, pr.w), got)
    return got
