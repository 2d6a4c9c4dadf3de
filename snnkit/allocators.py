"""Placement of a network's neurons on cores: small interchangeable allocators.

An allocator maps every neuron of every neuron population to a core; nothing else. Input
neurons are not placed: an input spike is sent by the host to every core that needs it.
:func:`snnkit.partition` turns a placement into per-core networks and checks them against the
hardware's limits, so the allocators carry no hardware constants (nengo-loihi's allocators are
the model; unlike theirs, no allocator knows the core's sizes).

- :class:`InOrder`: contiguous blocks of the global neuron order, equal in size. Delay-0
  projections run forward in that order, so a spike crossing cores on one always goes to a
  later core: the cores' step schedule never has a cycle.
- :class:`Metis`: METIS (pymetis) on the synapse graph, balanced neuron counts, fewest
  synapses across cores; a synapse of a delay-0 projection weighs more (a crossing there
  makes the target core wait for the source core within the step); a placement whose delay-0
  crossings would form a cycle between cores is redone with delay 0 weighing more, and if that
  fails too, in-order fill is used.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from .errors import NetworkError
from .network import Network


@dataclass
class NeuronGraph:
    """The synapses between neurons (inputs left out), nodes numbered over the neuron
    populations in network order."""

    populations: list[str]  # neuron populations, network order
    offsets: dict[str, int]  # node of each population's neuron 0
    n: int  # nodes
    src: np.ndarray  # int64 [edges]: presynaptic node of each synapse
    dst: np.ndarray  # int64 [edges]: postsynaptic node
    same_step: np.ndarray  # bool [edges]: the synapse belongs to a delay-0 projection

    @classmethod
    def of(cls, net: Network) -> NeuronGraph:
        pops = [p.name for p in net.neuron_populations]
        offsets, n = {}, 0
        for p in net.neuron_populations:
            offsets[p.name] = n
            n += p.size
        src, dst, same = [], [], []
        for pr in net.projections:
            if pr.source not in offsets:
                continue
            t, s = np.nonzero(pr.connections())
            src.append(s + offsets[pr.source])
            dst.append(t + offsets[pr.target])
            same.append(np.full(t.size, pr.delay == 0))
        return cls(pops, offsets, n, _cat(src, np.int64), _cat(dst, np.int64), _cat(same, bool))

    def same_step_cycle(self, core: np.ndarray) -> bool:
        """Whether the cores' delay-0 crossings under ``core`` form a cycle (then no order
        of the cores within a step computes them: :func:`snnkit.partition` refuses it)."""
        a, b = core[self.src[self.same_step]], core[self.dst[self.same_step]]
        edges = set(zip(a[a != b].tolist(), b[a != b].tolist()))
        after = {}
        for u, v in edges:
            after.setdefault(u, set()).add(v)
        state = {}

        def visit(u) -> bool:  # depth first: True on a back edge
            state[u] = 1
            for v in after.get(u, ()):
                if state.get(v) == 1 or (v not in state and visit(v)):
                    return True
            state[u] = 2
            return False

        return any(u not in state and visit(u) for u in list(after))

    def crossings(self, core: np.ndarray) -> int:
        """Synapses whose two neurons sit on different cores under placement ``core``."""
        return int(np.count_nonzero(core[self.src] != core[self.dst]))


def _cat(arrays: list, dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype) if arrays else np.zeros(0, dtype)


class Allocator(ABC):
    """The interface: :meth:`place` returns the core of every node of a :class:`NeuronGraph`."""

    name = ""

    @abstractmethod
    def place(self, graph: NeuronGraph, cores: int) -> np.ndarray:
        """The core of every node of ``graph``, each of ``range(cores)``."""


class InOrder(Allocator):
    """Cut the global neuron order into ``cores`` contiguous blocks of (nearly) equal size."""

    name = "in_order"

    def place(self, graph: NeuronGraph, cores: int) -> np.ndarray:
        return (np.arange(graph.n) * cores // max(graph.n, 1)).astype(np.int64)


class Metis(Allocator):
    """METIS k-way partitioning of the synapse graph (pymetis).

    Parameters
    ----------
    same_step_weight : weight of a delay-0 synapse relative to a delayed one (>= 1)
    imbalance : allowed excess of a core's neuron count over the mean, in 1/1000
        (METIS's ``ufactor``)
    seed : METIS's random seed (placements are reproducible)
    tries : partitionings METIS computes, keeping the best (its ``ncuts``); k-way and
        recursive bisection are both tried
    """

    name = "metis"

    def __init__(self, same_step_weight: int = 4, imbalance: int = 30, seed: int = 0,
                 tries: int = 8):
        if int(same_step_weight) < 1:
            raise NetworkError(f"same_step_weight: must be >= 1, got {same_step_weight!r}")
        self.same_step_weight, self.imbalance = int(same_step_weight), imbalance
        self.seed, self.tries = seed, tries

    def place(self, graph: NeuronGraph, cores: int) -> np.ndarray:
        if cores == 1 or graph.n <= cores:
            return InOrder().place(graph, cores)
        for factor in (1, 8, 64):  # a delay-0 cycle between cores: weigh delay 0 more
            core = self._place(graph, cores, self.same_step_weight * factor)
            if not graph.same_step_cycle(core):
                return core
        return InOrder().place(graph, cores)  # acyclic by construction

    def _place(self, graph: NeuronGraph, cores: int, same_step_weight: int) -> np.ndarray:
        import pymetis

        xadj, adjncy, weights = self._csr(graph, same_step_weight)
        if adjncy.size == 0:  # no synapses between neurons: balance is all there is
            return InOrder().place(graph, cores)
        graph_csr = pymetis.CSRAdjacency(xadj, adjncy)
        most = -(-graph.n * (1000 + self.imbalance) // (1000 * cores))  # a core's share
        best = None
        for recursive in (False, True):  # k-way and recursive bisection: keep the better cut
            opts = pymetis.Options(seed=int(self.seed), ufactor=int(self.imbalance),
                                   ncuts=int(self.tries))
            part = pymetis.part_graph(cores, graph_csr, eweights=weights, options=opts,
                                      recursive=recursive)
            core = np.asarray(part.vertex_part, np.int64)
            # on small graphs METIS may overfill a core: balance first, then the cut
            score = (max(0, int(np.bincount(core, minlength=cores).max()) - most),
                     part.edge_cuts)
            if best is None or score < best[0]:
                best = (score, core)
        return best[1]

    def _csr(self, g: NeuronGraph, same_step_weight: int):
        """Undirected, self-loops dropped, parallel synapses merged into one weighted edge."""
        w = np.where(g.same_step, same_step_weight, 1).astype(np.int64)
        keep = g.src != g.dst
        u = np.concatenate([g.src[keep], g.dst[keep]])
        v = np.concatenate([g.dst[keep], g.src[keep]])
        w = np.concatenate([w[keep], w[keep]])
        key, inv = np.unique(u * g.n + v, return_inverse=True)
        weight = np.bincount(inv, weights=w).astype(np.int64)
        u, v = key // g.n, key % g.n
        xadj = np.concatenate([[0], np.cumsum(np.bincount(u, minlength=g.n))])
        return xadj.astype(np.int64), v.astype(np.int64), weight


ALLOCATORS: dict[str, type[Allocator]] = {a.name: a for a in (InOrder, Metis)}


def allocator(spec) -> Allocator:
    """An :class:`Allocator` from an instance or a name ("in_order", "metis").

    Raises
    ------
    NetworkError : unknown name
    """
    if isinstance(spec, Allocator):
        return spec
    if spec not in ALLOCATORS:
        raise NetworkError(f"allocator: unknown {spec!r}; choose from {sorted(ALLOCATORS)} "
                           f"or pass an Allocator")
    return ALLOCATORS[spec]()
