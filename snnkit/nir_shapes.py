"""The shape of every node of a flat NIR graph, including the ones its exporter left out.

Exporters differ: sinabs and snntorch write a Conv2d without ``input_shape`` and neuron
nodes with one scalar per parameter (no shape), norse writes the sample's batch dimension
into Input and Output, lava-dl writes a flat Input before a Conv2d. Shapes are propagated
along the edges until nothing changes; a convolution or pool after a flat input reads it as
``[C, H, W]`` from its own ``input_shape``, its ``input_type``, or a square image (each such
reading is a note in the import report).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import NetworkError

SPATIAL = ("Conv2d", "SumPool2d", "AvgPool2d")
PASS = ("Flatten", "Wire", "Delay", "Scale")  # nodes a population's shape passes through


class Shapes:
    """``shape[node]`` for every node, and ``spatial_in[node]``: the [C, H, W] a
    convolution or pool reads."""

    def __init__(self, nodes, pred, kind, note, neurons):
        self.nodes, self.pred, self.kind, self.note = nodes, pred, kind, note
        self.neurons = neurons
        self.shape: dict[str, tuple] = {}
        self.spatial_in: dict[str, tuple] = {}
        self.out_of: dict[str, tuple] = {}  # conv/pool -> its output shape (set by the caller)

    def infer(self, spatial_out) -> None:
        """Fill ``shape``; ``spatial_out(node, [C, H, W])`` gives a conv's output shape."""
        for _ in range(len(self.nodes) + 1):
            changed = False
            for name in self.nodes:
                if name not in self.shape:
                    shp = self._shape_of(name, spatial_out)
                    if shp is not None:
                        self.shape[name], changed = shp, True
            if not changed:
                break
        missing = [n for n in self.nodes if n not in self.shape]
        if missing:
            raise NetworkError(f"NIR node {missing[0]!r}: cannot infer its size (no typed input "
                               f"reaches it)")
        for name in self.nodes:  # a neuron node sized by its own parameters
            if self.kind(name) in self.neurons:
                n = int(np.prod(self.shape[name]))
                for p in self.pred[name]:
                    if int(np.prod(self.shape[p])) != n:
                        raise NetworkError(
                            f"NIR node {name!r} ({self.kind(name)}): has {n} neurons (its "
                            f"parameters' size) but its input {p!r} ({self.kind(p)}) gives "
                            f"{int(np.prod(self.shape[p]))} values")

    def _in_shape(self, name):
        for p in self.pred[name]:
            if p in self.shape:
                return self.shape[p]
        return None

    def _shape_of(self, name, spatial_out):
        node, kind = self.nodes[name], self.kind(name)
        if kind == "Input":
            return self._unbatched(name, _dims(node.input_type["input"]))
        if kind in ("Affine", "Linear"):
            return (int(np.shape(node.weight)[0]),)
        shp = self._in_shape(name)
        if kind in self.neurons:
            v = np.asarray(_np(node.v_threshold))
            fed = bool(self.pred[name])  # unfed: a population driven by its bias alone
            if v.ndim == 3 or (v.size > 1 or not fed) and (shp is None
                                                          or int(np.prod(shp)) != v.size):
                return tuple(int(x) for x in v.shape) if v.ndim in (1, 3) else (v.size,)
        if shp is None:
            return None
        if kind in SPATIAL:
            self.spatial_in[name] = self._image(name, shp)
            return spatial_out(name, self.spatial_in[name])
        if kind == "Flatten":
            return (int(np.prod(shp)),)
        return shp

    def _unbatched(self, name, shp: tuple) -> tuple:
        if len(shp) in (2, 4) and shp[0] == 1:
            self.note(name, "input_type", f"shape {list(shp)} read as {list(shp[1:])} (a "
                      f"batch dimension of 1, as norse and rockpool write it, dropped)")
            return shp[1:]
        if len(shp) == 2 and self.dense_inputs(name) == {shp[1]}:
            self.note(name, "input_type", f"shape {list(shp)} read as [{shp[1]}] (the "
                      f"sample's {shp[0]} time steps, as sinabs writes them for layers that "
                      f"take [batch, time, ...], dropped: every layer it feeds takes "
                      f"{shp[1]} inputs)")
            return shp[1:]
        return shp

    def dense_inputs(self, name) -> set:
        """The input sizes of the nodes ``name`` feeds, if it feeds only dense layers (Affine,
        Linear); else an empty set."""
        outs = [b for b, ps in self.pred.items() if name in ps]
        if not outs or any(self.kind(b) not in ("Affine", "Linear")
                           or np.ndim(self.nodes[b].weight) != 2 for b in outs):
            return set()
        return {int(np.shape(self.nodes[b].weight)[1]) for b in outs}

    def _image(self, name, shp: tuple) -> tuple:
        """The [C, H, W] that conv/pool ``name`` reads from an input of shape ``shp``."""
        if len(shp) == 3:
            return shp
        node, kind = self.nodes[name], self.kind(name)
        n = int(np.prod(shp))
        typed = _dims((getattr(node, "input_type", None) or {}).get("input"))
        if len(typed) == 3 and int(np.prod(typed)) == n:
            return typed
        if kind != "Conv2d":
            raise NetworkError(f"NIR node {name!r} ({kind}): needs a [C, H, W] input, got "
                               f"shape {shp} and no input_type to read it as an image")
        c = int(np.shape(node.weight)[1]) * int(node.groups)
        hw = _dims(getattr(node, "input_shape", None))
        if len(hw) == 2 and c * hw[0] * hw[1] == n:
            out = (c, hw[0], hw[1])
            how = "the node's input_shape"
        else:
            side = math.isqrt(n // c) if n % c == 0 else 0
            if side * side * c != n:
                raise NetworkError(f"NIR node {name!r} (Conv2d): its input has {n} values, "
                                   f"which is not {c} channels of an image it can tell (no "
                                   f"input_shape); write the Input as [C, H, W]")
            out, how = (c, side, side), "a square image"
        self.note(name, "input_shape", f"flat input of {n} read as {list(out)} ({how})")
        return out

    def population_shape(self, name) -> tuple | None:
        """[C, H, W] of the population of neuron or Input node ``name``, if it has one: its
        own, or the image a convolution fed directly by it reads."""
        shp = self.shape[name]
        if len(shp) == 3:
            return shp
        for conv, image in self.spatial_in.items():
            if int(np.prod(image)) == int(np.prod(shp)) and self._feeds(name, conv):
                return image
        return None

    def _feeds(self, pop, node) -> bool:
        """True when ``pop`` reaches ``node`` through shape-preserving nodes only."""
        for p in self.pred[node]:
            if p == pop or (self.kind(p) in PASS and self._feeds(pop, p)):
                return True
        return False


def _np(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


def _dims(x) -> tuple:
    if x is None:
        return ()
    return tuple(int(i) for i in np.atleast_1d(np.asarray(_np(x))).reshape(-1))
