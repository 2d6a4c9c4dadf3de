"""The network the core runs: what the core lacks rewritten into what it has, with the same
integers (docs/hardware.md, "Per-neuron parameters" and "Limits of this version").

:func:`lower` does two things, in this order; the compiler sizes the core
(``HardwareConfig.for_network``, ``requirements``) and builds its images from the result, so
the cost of both is counted where it arises.

1. **Runs of equal parameters.** The core keeps one set of neuron parameters per population
   table entry (threshold, decays, reset, refractory period, v_init, adaptation) and one bias
   per neuron. A population whose neurons differ in a per-population parameter becomes one
   table entry per run of consecutive neurons whose integer parameters are equal, and every
   projection into or out of it one projection per pair of runs (the weight sub-blocks,
   masks and plastic masks cut out of it, the delay and STDP rule kept). Neurons are
   independent and the runs keep their order and their global indices, so the spikes, states
   and weights are exactly those of the network as given; the cost is table entries, a
   parameter load per run and step, and (with STDP) a copy of the traces per pair of runs.
2. **The delayed reset** (on a core without the ``"delayed_reset"`` feature;
   ``native_reset=True`` keeps it: that core adds ``c1``, ``c2`` itself from two population
   fields, docs/hardware.md "The delayed reset"). snntorch's delayed reset
   (``reset="delayed"``; docs/fixed-point.md, :func:`snnkit.neurons.delayed_reset_inputs`) is
   a reset by subtraction plus an input ``c1`` one step after each spike (and ``c2`` two
   steps after, for CubaLIF). The core has the reset by subtraction and delivers such inputs
   as synapses, so each run gets
   ``reset="subtract"`` and a diagonal self-projection per nonzero input (delay 1 and 2,
   weights ``c1`` and ``c2`` in LSB, which may differ per neuron): bit for bit what the
   fixed-point simulator computes for the original. The core stores every projection as a
   dense ``source x target`` block, so each self-projection takes ``n * n`` weight words for
   a run of ``n`` neurons (holding its ``n`` synapses), a projection-table entry, and a
   delay of up to 2 steps. Splitting first keeps those blocks to the runs' diagonals.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np

from .errors import NetworkError
from .network import Network, Quantization
from .parameters import STDPBoundsWarning
from .quantize import delayed_reset_weights, integer_neuron

# the integer parameters one table entry holds (the bias is per neuron: region BIAS)
TABLE_PARAMS = ("alpha", "beta", "adapt_decay", "threshold", "v_reset", "v_init", "adapt_plus")


@dataclass(frozen=True)
class Part:
    """One projection of the lowered network standing for a block of an original one."""

    index: int  # the lowered network's projection
    src: tuple[int, int]  # source neurons [lo, hi) of the original projection
    tgt: tuple[int, int]  # target neurons [lo, hi)


@dataclass
class Lowered:
    """What :func:`lower` returns."""

    net: Network  # what the core runs (the original itself when nothing is lowered)
    parts: list[list[Part]]  # per original projection, its lowered projections
    runs: dict[str, list[tuple[int, int]]]  # per original population: its runs [lo, hi)
    why: dict[str, str]  # per split population: the parameters that differ
    origin: dict[str, str]  # per population of ``net``: the original population's name
    # per original population with a delayed reset: the indices in ``net`` of its
    # self-projections (appended after the parts)
    resets: dict[str, list[int]] = field(default_factory=dict)
    # native_reset: the original populations whose delayed reset the core runs itself, and
    # the history it reads (1: c1 only, 2: c2 too)
    native: dict[str, int] = field(default_factory=dict)

    @property
    def split(self) -> bool:
        return any(len(r) > 1 for r in self.runs.values())

    def note(self) -> str:
        """How the populations were split, for messages and reports ("" when none is)."""
        return "; ".join(f"{name} into {len(self.runs[name])} runs (per-neuron {why})"
                         for name, why in self.why.items())

    def reset_note(self) -> str:
        """What the delayed resets cost, for messages and reports ("" when there is none)."""
        out = [f"{name}'s delayed reset in the core (fields C1, C2; no weight words)"
               for name in self.native]
        for name, idx in self.resets.items():
            words = sum(self.net.projections[i].weight.size for i in idx)
            out.append(f"{name}'s delayed reset as {len(idx)} self-projection"
                       f"{'s' if len(idx) > 1 else ''} ({words:,} weight words, delay <= "
                       f"{max(self.net.projections[i].delay for i in idx)})")
        return "; ".join(out)


def runs_of(net: Network, pop, q: Quantization) -> tuple[list[tuple[int, int]], str]:
    """Runs ``[lo, hi)`` of neurons of ``pop`` with equal table parameters, and the names of
    the parameters that differ ("" when there is one run)."""
    if pop.is_input:
        return [(0, pop.size)], ""
    ip = integer_neuron(net, pop, q)
    cols = {k: np.broadcast_to(np.asarray(getattr(ip, k)), (pop.size,)) for k in TABLE_PARAMS}
    cols["refractory"] = np.broadcast_to(np.asarray(pop.neuron.refractory), (pop.size,))
    cols["reset"] = np.broadcast_to(np.asarray(pop.neuron.reset), (pop.size,))
    change = np.zeros(pop.size, bool)
    differ = []
    for k, col in cols.items():
        d = np.zeros(pop.size, bool)
        d[1:] = col[1:] != col[:-1]
        if d.any():
            differ.append(k)
        change |= d
    cuts = [0] + [int(i) for i in np.flatnonzero(change)] + [pop.size]
    return list(zip(cuts[:-1], cuts[1:])), ", ".join(differ)


def lower(net: Network, q: Quantization | None = None, native_reset: bool = False) -> Lowered:
    """``net`` (its values in format ``q``, default its own) as the core runs it: populations
    split into runs of equal table parameters, delayed resets as self-projections (kept as
    they are with ``native_reset``: a core with the ``"delayed_reset"`` feature); ``net``
    itself when neither is needed.

    Raises
    ------
    NetworkError : a delayed reset's self-synapse weight does not fit the weights' width
    """
    q = q or net.quantization or Quantization()
    low = _split(net, q)
    delayed = [p for p in low.net.neuron_populations if p.neuron.reset == "delayed"]
    if not delayed:
        return low
    if native_reset:
        for pop in delayed:
            c2 = delayed_reset_weights(integer_neuron(low.net, pop, q), q)[1]
            name = low.origin[pop.name]
            low.native[name] = max(low.native.get(name, 1), 2 if np.any(c2) else 1)
        return low
    out = low.net
    if out is net:  # a copy to add to (same populations and projections at the same indices)
        out = copy.copy(net)
        out.populations = [copy.copy(p) for p in net.populations]
        out.projections = list(net.projections)
        low.net = out
    lo, hi = -(1 << (q.weight_bits - 1)), (1 << (q.weight_bits - 1)) - 1
    for pop in out.neuron_populations:
        if pop.neuron.reset != "delayed":
            continue
        name = low.origin[pop.name]
        where = f"populations[{net.index_of(name)}] ({name}).neuron.reset"
        cs = delayed_reset_weights(integer_neuron(out, pop, q), q)
        pop.neuron = copy.copy(pop.neuron)
        pop.neuron.reset = "subtract"
        for delay, c in enumerate(cs, start=1):
            if not np.any(c):
                continue
            if c.min() < lo or c.max() > hi:
                raise NetworkError(
                    f"{where}: 'delayed' runs on the core as a self-projection of weight "
                    f"{int(c.min() if c.min() < lo else c.max())} LSB (delay {delay}), which "
                    f"does not fit {q.weight_bits}-bit weights; quantise with fewer frac_bits "
                    f"(snnkit.quantize picks a format that fits)")
            out.connect(pop.name, pop.name, np.diag(c * 2.0 ** -q.frac_bits),
                        mask=np.eye(pop.size, dtype=bool), delay=delay)
            low.resets.setdefault(name, []).append(len(out.projections) - 1)
    return low


def _split(net: Network, q: Quantization) -> Lowered:
    """Step 1: the populations split into runs of equal table parameters."""
    runs, why = {}, {}
    for pop in net.populations:
        runs[pop.name], differ = runs_of(net, pop, q)
        if differ:
            why[pop.name] = differ
    if not why:
        parts = [[Part(i, (0, _size(net, pr.source)), (0, _size(net, pr.target)))]
                 for i, pr in enumerate(net.projections)]
        return Lowered(net, parts, runs, why, {p.name: p.name for p in net.populations})
    out = Network(dt=net.dt, quantization=net.quantization, name=net.name)
    names: dict[str, list[str]] = {}
    origin: dict[str, str] = {}
    taken = {p.name for p in net.populations}
    for pop in net.populations:
        names[pop.name] = []
        for k, (lo, hi) in enumerate(runs[pop.name]):
            name = pop.name if len(runs[pop.name]) == 1 else _fresh(f"{pop.name}.{k}", taken)
            names[pop.name].append(name)
            origin[name] = pop.name
            if pop.is_input:
                out.add_input(name, hi - lo, pop.encoding)
            else:
                out.add_population(name, hi - lo, _cut_neuron(pop.neuron, pop.size, lo, hi))
    parts = []
    with warnings.catch_warnings():  # the network as given already warned of its STDP bounds
        warnings.simplefilter("ignore", STDPBoundsWarning)
        for pr in net.projections:
            parts.append(_cut(out, pr, runs, names))
    return Lowered(out, parts, runs, why, origin)


def _cut(out: Network, pr, runs, names) -> list[Part]:
    """Projection ``pr`` as one projection of ``out`` per pair of its runs."""
    mine = []
    for (slo, shi), sname in zip(runs[pr.source], names[pr.source]):
        for (tlo, thi), tname in zip(runs[pr.target], names[pr.target]):
            cut = (slice(tlo, thi), slice(slo, shi))
            mask = pr.mask if pr.conv is None else pr.connections()  # conv: expanded
            out.connect(sname, tname, pr.dense_weight()[cut],
                        mask=None if mask is None else mask[cut], delay=pr.delay,
                        stdp=copy.deepcopy(pr.stdp),
                        plastic_mask=None if pr.plastic_mask is None
                        else pr.plastic_mask[cut])
            mine.append(Part(len(out.projections) - 1, (slo, shi), (tlo, thi)))
    return mine


def _size(net: Network, name: str) -> int:
    return net.population(name).size


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


def _cut_neuron(neuron, size: int, lo: int, hi: int):
    """A copy of ``neuron`` with every per-neuron array cut to neurons ``[lo, hi)``."""
    out = copy.copy(neuron)
    for f in vars(neuron):
        v = getattr(neuron, f)
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.shape[0] == size:
            setattr(out, f, v[lo:hi].copy())
    return out
