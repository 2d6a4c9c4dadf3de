"""A NIR graph as the importer reads it: loaded from a file, a dict or a graph, sub-graphs
inlined into one flat graph of nodes and edges, node types checked, and the update order of
its populations."""

from __future__ import annotations

import copy
from pathlib import Path

from .errors import NetworkError


def load(graph_or_path):
    """The ``nir.NIRGraph`` of a path, a ``to_dict()`` dict or a graph; NetworkError else."""
    import nir

    if isinstance(graph_or_path, (str, Path)):
        path = Path(graph_or_path)
        if path.is_dir():
            raise NetworkError(f"{path}: is a folder, not a NIR file")
        if not path.is_file():
            raise NetworkError(f"{path}: no such file")
        try:
            return _typed(lambda check: nir.read(path, type_check=check))
        except Exception as e:  # noqa: BLE001 - h5py/nir raise many types
            raise NetworkError(f"{path}: not a NIR file, or damaged ({type(e).__name__}: "
                               f"{e}); if nir.write raised while writing it, it is half "
                               f"written (nir 1.0.8 cannot store norse's 0-d parameters or "
                               f"sinabs' empty Conv2d input_shape, docs/nir.md): give "
                               f"from_nir the graph and save the network, "
                               f"snnkit.from_nir(graph, ...).save('net.snn')") from None
    if isinstance(graph_or_path, dict):
        # nir's from_dict deletes keys of the dict it reads (Input's "shape"): each try reads
        # a copy, so the retry without nir's type check and the caller's dict stay whole
        try:
            return _typed(lambda check: nir.NIRGraph.from_dict(
                {**copy.deepcopy(graph_or_path), "type_check": check}))
        except Exception as e:  # noqa: BLE001
            raise NetworkError(f"graph_or_path: dict is not a NIR graph ({e})")
    if isinstance(graph_or_path, nir.NIRGraph):
        return graph_or_path
    raise NetworkError(f"graph_or_path: expected a nir.NIRGraph, a dict or a path, got "
                       f"{type(graph_or_path).__name__}")


def _typed(read):
    """``read(type_check)``, without nir's own type check where only that fails: exporters
    write shapes it refuses (rockpool's Input [1, n] before a Linear [n], sinabs' empty
    Conv2d ``input_shape``) that the importer reads (snnkit/nir_shapes.py)."""
    try:
        return read(True)
    except ValueError as e:
        if "type" not in str(e).lower():
            raise
        return read(False)


def inline(graph, prefix: str = "") -> tuple[dict, list[tuple[str, str]]]:
    """Inline sub-graphs (snntorch's RLeaky/RSynaptic); their Input/Output become wires."""
    nodes, edges, entry, exit_ = {}, [], {}, {}
    for key, node in graph.nodes.items():
        name = prefix + str(key)
        if type(node).__name__ != "NIRGraph":
            nodes[name] = node
            continue
        sub_nodes, sub_edges = inline(node, name + ".")
        entry[key] = [n for n, v in sub_nodes.items() if type(v).__name__ == "Input"]
        exit_[key] = [n for n, v in sub_nodes.items() if type(v).__name__ == "Output"]
        for n in entry[key] + exit_[key]:
            sub_nodes[n] = Wire(sub_nodes[n])
        nodes.update(sub_nodes)
        edges += sub_edges
    for a, b in graph.edges:
        for src in exit_.get(a, [prefix + str(a)]):
            for dst in entry.get(b, [prefix + str(b)]):
                edges.append((src, dst))
    return nodes, edges


def drop_added_inputs(nodes: dict, edges: list) -> tuple[dict, list]:
    """nir.NIRGraph gives each node that nothing feeds an Input of its own (a population
    snnkit drives by its bias alone). In a graph snnkit wrote (its Inputs carry
    ``snnkit_index``) an Input without that index is nir's addition: dropped with its edges,
    the network reads back as it was, with the inputs it had."""
    def is_input(n, ours):
        meta = getattr(n, "metadata", None) or {}
        return type(n).__name__ == "Input" and ("snnkit_index" in meta) == ours

    if not any(is_input(n, True) for n in nodes.values()):
        return nodes, edges
    added = {k for k, n in nodes.items() if is_input(n, False)}
    return ({k: n for k, n in nodes.items() if k not in added},
            [(a, b) for a, b in edges if a not in added])


class Wire:
    """An Input/Output node inside a sub-graph, or a node an exporter left empty (norse
    writes ``None`` for ``torch.nn.Flatten``): passes its input through. ``empty``: the
    latter, which the importer reads as a Flatten only where nothing else fits."""

    def __init__(self, node):
        self.kind = type(node).__name__
        self.empty = node is None
        self.metadata = {}


def check_types(nodes: dict, known: tuple) -> None:
    """Refuse node types outside ``known``; a ``None`` node becomes a :class:`Wire`."""
    for name, node in nodes.items():
        t = type(node).__name__
        if node is None:
            nodes[name] = Wire(node)
        elif not isinstance(node, Wire) and t not in known:
            raise NetworkError(f"NIR node {name!r}: type {t} is not supported (supported: "
                               f"{', '.join(known)})")


def update_order(nodes: dict, pops: list, routes: dict, const: str) -> list[str]:
    """Update order: snnkit's saved order, else the graph's order if consistent, else Kahn."""
    idx = [nodes[p].metadata.get("snnkit_index") for p in pops]
    if all(i is not None for i in idx):
        return [p for _, p in sorted(zip([int(i) for i in idx], pops))]
    deps = {t: {r[0] for r in rs if r[1] == 0 and r[0] != const} for t, rs in routes.items()}
    pos = {p: i for i, p in enumerate(pops)}
    if all(pos[s] < pos[t] or _reaches(t, s, deps) for t in deps for s in deps[t]):
        return pops
    order, left = [], list(pops)
    while left:
        ready = [p for p in left if not (deps.get(p, set()) - set(order) - {p})]
        order.append(ready[0] if ready else left[0])
        left.remove(order[-1])
    return order


def _reaches(a, b, deps) -> bool:
    """True when spikes of ``a`` reach ``b`` through delay-0 routes (a loop closes)."""
    stack, seen = [a], set()
    while stack:
        x = stack.pop()
        if x == b:
            return True
        seen.add(x)
        stack += [t for t, ss in deps.items() if x in ss and t not in seen]
    return False
