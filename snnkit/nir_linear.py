"""NIR's linear nodes as maps over flattened (channel-major) indices: a route from a
population through linear nodes composed into one map, kept as a convolution (one shared
kernel) while it is one, else a dense matrix."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .conv import Conv
from .errors import NetworkError


@dataclass
class ConvOp:
    """A convolution: its geometry and its float64 kernel ``[C_out, C_in/groups, kH, kW]``."""

    conv: Conv
    kernel: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """The convolution of each row of ``x`` ``[n, source]`` -> ``[n, target]``."""
        t = torch.as_tensor(x, dtype=torch.float64).reshape((-1,) + self.conv.in_shape)
        y = F.conv2d(t, torch.as_tensor(self.kernel), **self.conv.options())
        return y.reshape(x.shape[0], -1).numpy()

    def apply_t(self, m: np.ndarray) -> np.ndarray:
        """``m @ dense`` for ``m`` ``[n, target]``, by the transposed convolution."""
        c = self.conv
        t = torch.as_tensor(m, dtype=torch.float64).reshape((-1,) + c.out_shape)
        pad = [c.in_shape[1 + i] - ((c.out_shape[1 + i] - 1) * c.stride[i] - 2 * c.padding[i]
                                    + c.dilation[i] * (c.kernel[i] - 1) + 1) for i in (0, 1)]
        if min(pad) < 0 or any(p >= max(s, d) for p, s, d in zip(pad, c.stride, c.dilation)):
            return m @ self.dense()
        y = F.conv_transpose2d(t, torch.as_tensor(self.kernel), stride=c.stride,
                               padding=c.padding, output_padding=tuple(pad), groups=c.groups,
                               dilation=c.dilation)
        return y.reshape(m.shape[0], -1).numpy()

    def dense(self) -> np.ndarray:
        return self.conv.dense(self.kernel)

    def full_kernel(self) -> np.ndarray:
        """The kernel as one group (zeros between groups)."""
        g, (co, cg) = self.conv.groups, self.kernel.shape[:2]
        if g == 1:
            return self.kernel
        out = np.zeros((co, cg * g) + self.kernel.shape[2:])
        for o in range(co):
            k = o // (co // g)
            out[o, k * cg:(k + 1) * cg] = self.kernel[o]
        return out


@dataclass
class Route:
    """A linear route from a source population (or the constant 1) to a node's output."""

    source: str
    m: np.ndarray | None  # [out, source] matrix; None = identity (or ``c``)
    s: np.ndarray | None  # bool structure [out, source]; None = dense
    delay: float  # seconds
    meta: dict | None  # metadata of the single weighted node on the route, if exactly one
    hops: int  # weighted nodes on the route
    c: ConvOp | None = None  # the route is this convolution (``m`` is None)

    def matrix(self) -> np.ndarray | None:
        return self.c.dense() if self.c is not None else self.m

    def structure(self) -> np.ndarray | None:
        return self.c.conv.structure() if self.c is not None else self.s


def compose(r: Route, m, s, delay, node, op: ConvOp | None = None) -> Route:
    """Route ``r`` continued through one linear node: its matrix ``m`` and structure ``s``
    (None: identity / dense) or its convolution ``op``, and ``delay`` seconds. Convolutions
    stay convolutions while they can (two in a row merge when that is exact, see
    :func:`merge`), else become dense matrices."""
    if m is None and op is None:
        return dataclasses.replace(r, delay=r.delay + delay)
    meta = getattr(node, "metadata", None) if r.hops == 0 else None
    if op is not None:
        if r.m is None and r.c is None:
            return Route(r.source, None, None, r.delay + delay, meta, r.hops + 1, op)
        if r.c is not None:
            both = merge(r.c, op)
            if both is not None:
                return Route(r.source, None, None, r.delay + delay, meta, r.hops + 1, both)
        mm = op.apply(r.matrix().T).T
        rs = r.structure()
        ss = None if rs is None else (op.conv.structure().astype(np.int64)
                                      @ rs.astype(np.int64)) > 0
        return Route(r.source, mm, ss, r.delay + delay, meta, r.hops + 1)
    if r.c is not None:
        return Route(r.source, r.c.apply_t(m), None, r.delay + delay, meta, r.hops + 1)
    mm = m if r.m is None else m @ r.m
    if s is None or r.s is None and r.m is not None:
        ss = None
    else:
        ss = s if r.m is None else (s.astype(np.int64) @ r.s.astype(np.int64)) > 0
    return Route(r.source, mm, ss, r.delay + delay, meta, r.hops + 1)


def merge(a: ConvOp, b: ConvOp) -> ConvOp | None:
    """``b`` after ``a`` as one convolution (e.g. a sum pool and the convolution after it),
    or None when that is not exact (padding of ``b`` that would read real inputs of ``a``,
    dilations). Checked on a random input, so a merge is never an approximation."""
    ca, cb = a.conv, b.conv
    if ca.dilation != (1, 1) or cb.dilation != (1, 1):
        return None
    ka, kb = a.full_kernel(), b.full_kernel()
    size = [ca.stride[i] * (cb.kernel[i] - 1) + ca.kernel[i] for i in (0, 1)]
    k = np.zeros((kb.shape[0], ka.shape[1], *size))
    for y in range(cb.kernel[0]):
        for x in range(cb.kernel[1]):
            ys, xs = ca.stride[0] * y, ca.stride[1] * x
            k[:, :, ys:ys + ca.kernel[0], xs:xs + ca.kernel[1]] += np.einsum(
                "om,mipq->oipq", kb[:, :, y, x], ka)
    try:
        conv = Conv.make(ca.in_shape, k.shape,
                         (ca.stride[0] * cb.stride[0], ca.stride[1] * cb.stride[1]),
                         (ca.padding[0] + ca.stride[0] * cb.padding[0],
                          ca.padding[1] + ca.stride[1] * cb.padding[1]))
    except NetworkError:
        return None
    out = ConvOp(conv, k)
    if conv.out_shape != cb.out_shape:
        return None
    x = np.random.default_rng(0).normal(size=(2, int(np.prod(ca.in_shape))))
    want = b.apply(a.apply(x))
    if not np.allclose(out.apply(x), want, rtol=1e-9, atol=1e-9 * (1 + np.abs(want).max())):
        return None
    return out


def spatial_op(name: str, node, kind: str, shp: tuple) -> tuple[ConvOp, np.ndarray | None]:
    """(convolution, bias per output neuron or None) of the Conv2d / SumPool2d / AvgPool2d
    ``node`` (NIR node ``name`` of type ``kind``) on a ``[C, H, W]`` input; a pool is a
    convolution of fixed weights per channel (groups = C).

    Raises
    ------
    NetworkError : the input is not ``[C, H, W]``, or the parameters do not fit it
    """
    where = f"NIR node {name!r} ({kind})"
    if len(shp) != 3:
        raise NetworkError(f"{where}: needs a [C, H, W] input, got shape {shp}")
    if kind == "Conv2d":
        w = np.asarray(_np(node.weight), np.float64)
        dil = pair(node.dilation)
        pad = node.padding
        if isinstance(pad, str):
            pad = _same_padding(where, pad, w.shape[2:], dil)
        conv = Conv.make(shp, w.shape, pair(node.stride), pair(pad), dil, int(node.groups),
                         where)
        b = getattr(node, "bias", None)
        bias = None if b is None else np.repeat(np.asarray(_np(b), np.float64).reshape(-1),
                                                conv.out_shape[1] * conv.out_shape[2])
        return ConvOp(conv, w), bias
    k = pair(node.kernel_size)
    w = np.ones((shp[0], 1) + k) / (k[0] * k[1] if kind == "AvgPool2d" else 1)
    stride = k if getattr(node, "stride", None) is None else pair(node.stride)
    return ConvOp(Conv.make(shp, w.shape, stride, pair(node.padding), 1, shp[0], where), w), None


def _same_padding(where, pad: str, k, dil) -> tuple[int, int]:
    if pad == "valid":
        return (0, 0)
    span = [d * (n - 1) for d, n in zip(dil, k)]
    if pad != "same" or any(s % 2 for s in span):
        raise NetworkError(f"{where}.padding: {pad!r} is not supported (only 'valid', and "
                           f"'same' with odd kernels: equal padding on both sides)")
    return (span[0] // 2, span[1] // 2)


def _np(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


def pair(x) -> tuple[int, int]:
    """A scalar or a pair (kernel size, stride, padding ...) as a pair of ints."""
    v = np.asarray(_np(x)).reshape(-1)
    return tuple(int(i) for i in np.broadcast_to(v, (2,)))
