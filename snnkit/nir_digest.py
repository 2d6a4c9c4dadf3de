"""A digest of a NIR graph's contents, written by :func:`snnkit.to_nir` into the graph's
metadata (``snnkit_digest``) and checked by :func:`snnkit.from_nir`.

NIR files (HDF5) carry no checksum of their data, so a byte changed in a weight gives a valid
file with another weight. The digest makes such a change in a file snnkit wrote an error
instead of a different network. It is a SHA-256 over every node's type, parameters and
metadata and the edges, in a canonical form that survives a write and a read (strings and
bytes alike, numbers as float64 or int64, tuples of numbers as arrays).
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

KEY = "snnkit_digest"


def digest(graph) -> str:
    """The hex SHA-256 of ``graph``'s contents (its own ``snnkit_digest`` left out)."""
    h = hashlib.sha256()
    _feed(h, graph)
    return h.hexdigest()


def _feed(h, graph) -> None:
    for name in sorted(graph.nodes, key=str):
        node = graph.nodes[name]
        h.update(f"node {name} {type(node).__name__}\n".encode())
        if type(node).__name__ == "NIRGraph":
            _feed(h, node)
            continue
        for f in dataclasses.fields(node):
            if f.name in ("input_type", "output_type"):  # derived from the parameters
                continue
            h.update(f"{f.name}=".encode())
            _value(h, getattr(node, f.name))
    for a, b in sorted((str(a), str(b)) for a, b in graph.edges):
        h.update(f"edge {a} {b}\n".encode())
    _value(h, {k: v for k, v in (graph.metadata or {}).items() if k != KEY})


def _value(h, v) -> None:
    if isinstance(v, dict):
        for k in sorted(v, key=str):
            h.update(f"[{k}]".encode())
            _value(h, v[k])
        return
    if isinstance(v, (bytes, str)):
        h.update(b"s" + (v if isinstance(v, bytes) else v.encode()) + b";")
        return
    if isinstance(v, (list, tuple)) and v and all(
            isinstance(x, (int, float, np.number)) and not isinstance(x, bool) for x in v):
        v = np.asarray(v)  # a tuple of numbers (a Conv2d's stride) is read back as an array
    if isinstance(v, (list, tuple)):
        h.update(b"l")
        for x in v:
            _value(h, x)
        h.update(b";")
        return
    if v is None:
        h.update(b"n;")
        return
    a = np.asarray(v)
    if a.dtype.kind in "biu":
        a = a.astype(np.int64)
    elif a.dtype.kind == "f":
        a = a.astype(np.float64)
    elif a.dtype.kind in "OSU":
        _value(h, [x for x in a.reshape(-1).tolist()])
        return
    h.update(f"a{a.dtype.str}{a.shape}".encode() + np.ascontiguousarray(a).tobytes() + b";")
