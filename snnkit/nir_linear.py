"""NIR's linear nodes as matrices over flattened (channel-major) indices: a route from a
population through linear nodes composed into one matrix, and the dense matrix of a
convolution or pooling."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .errors import NetworkError


@dataclass
class Route:
    """A linear route from a source population (or the constant 1) to a node's output."""

    source: str
    m: np.ndarray | None  # [out, source] matrix; None = identity
    s: np.ndarray | None  # bool structure [out, source]; None = dense
    delay: float  # seconds
    meta: dict | None  # metadata of the single weighted node on the route, if exactly one
    hops: int  # weighted nodes on the route


def compose(r: Route, m, s, delay, node) -> Route:
    """Route ``r`` continued through one linear node: its matrix ``m`` (None: identity),
    structure ``s`` (None: dense) and ``delay`` seconds."""
    if m is None:
        return dataclasses.replace(r, delay=r.delay + delay)
    mm = m if r.m is None else m @ r.m
    if s is None or r.s is None and r.m is not None:
        ss = None
    else:
        ss = s if r.m is None else (s.astype(np.int64) @ r.s.astype(np.int64)) > 0
    meta = getattr(node, "metadata", None) if r.hops == 0 else None
    return Route(r.source, mm, ss, r.delay + delay, meta, r.hops + 1)


def spatial_matrix(name: str, node, kind: str, shp: tuple):
    """(matrix [out, in], structure [out, in], bias or None, output shape) of the conv or pool
    ``node`` (NIR node ``name`` of type ``kind``) on a ``[C, H, W]`` input, over channel-major
    flattened indices.

    Raises
    ------
    NetworkError : the input is not ``[C, H, W]``
    """
    if len(shp) != 3:
        raise NetworkError(f"NIR node {name!r} ({kind}): needs a [C, H, W] input, got "
                           f"shape {shp}")
    n = int(np.prod(shp))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shp)
    if kind == "Conv2d":
        w = torch.as_tensor(np.asarray(node.weight, np.float64))
        pad = node.padding if isinstance(node.padding, str) else pair(node.padding)
        kw = {"stride": pair(node.stride), "padding": pad, "groups": int(node.groups),
              "dilation": pair(node.dilation)}
        out = F.conv2d(eye, w, **kw)
        s = F.conv2d(eye, torch.ones_like(w), **kw) != 0
        bias = np.repeat(np.asarray(node.bias, np.float64).reshape(-1), out[0, 0].numel())
    else:
        k = pair(node.kernel_size)
        out = F.avg_pool2d(eye, k, stride=pair(node.stride), padding=pair(node.padding))
        s = out != 0
        if kind == "SumPool2d":
            out = out * (k[0] * k[1])
        bias = None
    m = out.reshape(n, -1).T.contiguous().numpy()
    return m, s.reshape(n, -1).T.numpy(), bias, tuple(out.shape[1:])


def pair(x) -> tuple[int, int]:
    """A scalar or a pair (kernel size, stride, padding ...) as a pair of ints."""
    v = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x).reshape(-1)
    return tuple(int(i) for i in np.broadcast_to(v, (2,)))
