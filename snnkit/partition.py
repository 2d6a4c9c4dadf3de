"""One network over K cores: placement, per-core networks, spike routes, the step schedule.

:func:`partition` places every neuron on a core (an allocator from :mod:`snnkit.allocators`),
splits populations and projections along the placement, and gives each core an ordinary
:class:`~snnkit.network.Network` that one core (or one board) runs unchanged:

- a population's neurons on core k form a population of the same name there (its *part*);
- a network input needed on core k is an input population there (the host sends each input
  spike to every core that needs it);
- spikes from neurons on other cores arrive through *proxy* input populations: ``P.now``
  carries population P's spikes of this step (for delay-0 projections), ``P.prev`` those of
  the previous step (for delay >= 1: the local projection has delay ``d - 1``);
- projection S -> T becomes one local projection per source block (the local part, the
  input, a proxy), with the same weights, mask, STDP rule and plastic mask.

Cross-core semantics (docs/hardware.md, "Many cores"): a partitioned network computes exactly
what the network computes on one core, spike for spike, state for state, weight for weight.
A spike of step t that crosses cores on a projection with delay d >= 1 is routed at the end
of step t (the step barrier) and enters the target core as an input of step t + 1, where a
local delay d - 1 makes it arrive at step t + d as on one core. A delay-0 crossing is
visible in the same step: the target core starts its step only after the source core has
finished it (the cores run each step in *waves*; cores of one wave run in parallel). The
cores' delay-0 dependencies must therefore form no cycle: :class:`~snnkit.allocators.InOrder`
never makes one, :class:`~snnkit.allocators.Metis` weighs delay-0 synapses so that it rarely
does, and a placement with a cycle is refused.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from . import allocators
from .allocators import Allocator, NeuronGraph
from .compiler import HardwareConfig, requirements
from .errors import NetworkError
from .network import Network
from .quantize import integer_weights, quantize
from .result import Result

LAG_NAMES = {0: "now", 1: "prev"}  # proxy population suffix by lag (steps)


@dataclass(frozen=True)
class Source:
    """Where the spikes of one of a core's input populations come from."""

    population: str  # global population: a network input, or a neuron population (proxy)
    indices: np.ndarray  # int64: its neurons this input population carries, in order
    lag: int  # the step the spikes are from: 0 this step, 1 the previous one
    proxy: bool  # True: neurons on other cores (routed); False: a network input (host)


@dataclass
class Core:
    """One core's share of a partitioned network."""

    index: int
    net: Network | None  # the core's network (None: nothing placed here)
    parts: dict[str, np.ndarray]  # neuron population -> its neurons on this core (in order)
    sources: dict[str, Source]  # local input population -> where its spikes come from
    blocks: list[tuple[int, np.ndarray, np.ndarray]]  # per local projection: (global
    #  projection, target neurons, source neurons) of the weight block it holds

    def needs(self, limits: HardwareConfig) -> dict[str, tuple[int, int]]:
        """``{limit: (needed, available)}`` of this core (docs/hardware.md)."""
        if self.net is None:
            return {}
        return requirements(self.net, limits)

    def counts(self) -> tuple[int, int, int]:
        """``(own neurons, network inputs, proxies)``: the proxies are copies of neurons on
        other cores, one per source neuron a local synapse reads (per delay kind), which make
        a core's neuron count exceed its share of the network."""
        return (sum(i.size for i in self.parts.values()),
                sum(s.indices.size for s in self.sources.values() if not s.proxy),
                sum(s.indices.size for s in self.sources.values() if s.proxy))

    def neuron_split(self, what: str) -> str:
        """The neuron count's parts, for a limit's message."""
        if not what.startswith("neurons") or self.net is None:
            return ""
        own, inputs, proxies = self.counts()
        return (f" ({own} of its own neurons, {inputs} network inputs, {proxies} copies of "
                f"neurons on other cores that its synapses read)")


@dataclass
class Partition:
    """A network placed on cores: what :func:`partition` returns.

    ``placement[pop][n]`` is the core of neuron n of neuron population ``pop``; ``cores[k]``
    holds core k's network and routes; ``waves`` is the step schedule (each step, the cores
    of ``waves[0]`` run, then those of ``waves[1]`` ...); ``crossings`` counts the synapses
    of each projection (by index) whose two neurons sit on different cores.
    """

    net: Network  # the whole network (quantised)
    placement: dict[str, np.ndarray]
    cores: list[Core]
    waves: list[list[int]]
    crossings: dict[int, int]
    limits: HardwareConfig
    allocator: str
    same_step_crossings: int = 0  # crossing synapses of delay-0 projections
    notes: list[str] = field(default_factory=list)

    @property
    def cross_synapses(self) -> int:
        """Synapses between neurons on different cores."""
        return sum(self.crossings.values())

    # ------------------------------------------------------------------ routing

    def local_inputs(self, k: int, spikes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Core k's inputs over a whole run, from every population's spikes
        ``{population: [steps, batch, size]}`` (inputs and neurons): what the router and
        the host deliver to it. Used to check one core against the whole network."""
        out = {}
        for name, src in self.cores[k].sources.items():
            x = spikes[src.population][..., torch.as_tensor(src.indices)]
            if src.lag:
                x = torch.cat([torch.zeros_like(x[:src.lag]), x[:-src.lag]])
            out[name] = x
        return out

    def step_events(self, k: int, now: dict[str, np.ndarray],
                    prev: dict[str, np.ndarray]) -> list[int]:
        """Core k's input events for one step of one sample: its (local) global indices of
        the input neurons that spike, from every population's spikes of this step (``now``:
        inputs, and the neuron populations of earlier waves) and of the previous step."""
        net, events = self.cores[k].net, []
        for name, src in self.cores[k].sources.items():
            x = (prev if src.lag else now)[src.population][src.indices]
            events += (np.flatnonzero(x) + net.offset(name)).tolist()
        return events

    def scatter(self, k: int, events, spikes: dict[str, np.ndarray]) -> None:
        """Write core k's output events of one step (its global indices) into the whole
        network's spike vectors ``{neuron population: bool [size]}``."""
        net = self.cores[k].net
        for name, idx in self.cores[k].parts.items():
            off = net.offset(name)
            local = np.asarray([e - off for e in events if off <= e < off + idx.size], np.int64)
            spikes[name][idx[local]] = True

    def merge(self, inputs: dict[str, torch.Tensor], results: list[Result | None],
              backend: str) -> Result:
        """One :class:`Result` of the whole network from each core's result (spikes, recorded
        states, plastic weights and their per-step record), as :func:`snnkit.simulate`
        returns for the network on one core."""
        net = self.net
        ref = next(r for r in results if r is not None)
        steps, batch = ref.steps, ref.batch
        spikes = {p.name: inputs[p.name].to(torch.bool).cpu() for p in net.inputs
                  if p.encoding == "spikes"}
        states: dict[str, dict[str, torch.Tensor]] = {}
        for pop in net.neuron_populations:
            spikes[pop.name] = torch.zeros(steps, batch, pop.size, dtype=torch.bool)
        for core, res in zip(self.cores, results):
            if res is None:
                continue
            for name, idx in core.parts.items():
                spikes[name][..., torch.as_tensor(idx)] = res.spikes[name].cpu()
                for var, t in res.states.get(name, {}).items():
                    full = states.setdefault(name, {}).setdefault(
                        var, torch.zeros(steps, batch, net.population(name).size, dtype=t.dtype))
                    full[..., torch.as_tensor(idx)] = t.cpu()
        weights, trace = {}, {}
        q = net.quantization
        for j, pr in enumerate(net.projections):
            if pr.stdp is None:
                continue
            w0 = torch.from_numpy(integer_weights(net, j, q))
            for core, res in zip(self.cores, results):
                if res is None:
                    continue
                for local, (g, tgt, src) in enumerate(core.blocks):
                    if g != j:
                        continue
                    name = core.net.projections[local].name
                    ix = (torch.as_tensor(tgt)[:, None], torch.as_tensor(src)[None, :])
                    if name in res.weights:
                        w = weights.setdefault(pr.name, w0.expand(batch, -1, -1).clone())
                        w[(slice(None),) + ix] = res.weights[name].cpu().to(w.dtype)
                    if name in res.weight_trace:
                        wt = trace.setdefault(pr.name, w0.expand(steps, batch, -1, -1).clone())
                        wt[(slice(None), slice(None)) + ix] = res.weight_trace[name].cpu().to(
                            wt.dtype)
        return Result(backend, steps, batch, spikes, states, weights, trace, lsb=ref.lsb)

    # ------------------------------------------------------------------ report

    def __str__(self) -> str:
        n_syn = max(self.net.n_synapses, 1)
        lines = [f"{self.net.name or 'network'} on {len(self.cores)} cores ({self.allocator}): "
                 f"{self.cross_synapses:,} of {self.net.n_synapses:,} synapses cross cores "
                 f"({100 * self.cross_synapses / n_syn:.1f}%), "
                 f"{self.same_step_crossings:,} of them in the same step; "
                 f"waves {self.waves}"]
        for core in self.cores:
            if core.net is None:
                lines.append(f"  core {core.index}: empty")
                continue
            own, ins, prox = core.counts()
            need = core.needs(self.limits)
            words, cap = need["weight words"]
            lines.append(f"  core {core.index}: {own} neurons + {ins} inputs + {prox} proxies "
                         f"of {self.limits.n_max}; {words:,} of {cap:,} weight words; "
                         f"{len(core.net.populations)} populations, "
                         f"{len(core.net.projections)} projections")
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


# --------------------------------------------------------------------------- partition


def partition(net: Network, cores: int, limits: HardwareConfig | None = None,
              allocator: str | Allocator = "metis") -> Partition:
    """Place ``net`` on ``cores`` cores of the given size and split it along the placement.

    Parameters
    ----------
    net : the network (quantised first if it has no format: every core uses the same one)
    cores : number of cores K
    limits : one core's sizes (neurons, weight words, populations, projections, delay, STDP
        traces); default the standard core, ``HardwareConfig()``
    allocator : "metis" (fewest crossing synapses), "in_order", or an Allocator

    Returns
    -------
    :class:`Partition`

    Raises
    ------
    NetworkError : ``cores`` is not a positive integer, the network cannot fit K cores (the
        message names the core and the limit), or the placement's delay-0 crossings form a
        cycle between cores
    """
    if not isinstance(cores, (int, np.integer)) or isinstance(cores, bool) or cores < 1:
        raise NetworkError(f"cores: must be a positive integer, got {cores!r}")
    if not isinstance(net, Network):
        raise NetworkError(f"partition: expected a snnkit.Network, got {type(net).__name__}")
    if net.quantization is None:
        net, _ = quantize(net)
    limits = limits or HardwareConfig()
    alloc = allocators.allocator(allocator)
    graph = NeuronGraph.of(net)
    if graph.n == 0:
        raise NetworkError("network: has no neuron population to partition")
    if graph.n > cores * limits.n_max:
        raise NetworkError(f"network does not fit {cores} cores: {graph.n} neurons, "
                           f"{cores} x {limits.n_max} (N_MAX) available")
    # all K cores; where a core's limits are exceeded (spread wider, each core reads more
    # copies of the others' neurons), fewer, the rest left empty
    first = None
    for used in range(int(cores), 0, -1):
        if graph.n > used * limits.n_max:
            break
        placement, parts, error = _place(net, graph, alloc, int(cores), used, limits)
        if error is None:
            break
        first = first or error
    if error is not None:
        raise NetworkError(first + "; use more cores or bigger ones")
    notes = [f"placed on {used} of the {cores} cores (on all of them: {first})"] if first else []
    crossings = {}
    for j, pr in enumerate(net.projections):
        if pr.source in placement:
            t, s = np.nonzero(pr.connections())
            n = int(np.count_nonzero(placement[pr.source][s] != placement[pr.target][t]))
            if n:
                crossings[j] = n
    same = sum(n for j, n in crossings.items() if net.projections[j].delay == 0)
    return Partition(net, placement, parts, _waves(net, placement, parts), crossings, limits,
                     alloc.name, same, notes)


def _place(net: Network, graph: NeuronGraph, alloc: Allocator, cores: int, used: int,
           limits: HardwareConfig):
    """``(placement, cores' parts, None)`` of ``net`` placed on the first ``used`` of
    ``cores`` cores, or ``(.., .., why)`` naming the first core whose limits it exceeds."""
    core_of = np.asarray(alloc.place(graph, used), np.int64)
    if core_of.shape != (graph.n,) or core_of.min() < 0 or core_of.max() >= used:
        raise NetworkError(f"allocator {alloc.name!r}: returned an invalid placement")
    placement = {p: core_of[graph.offsets[p]:graph.offsets[p] + net.population(p).size]
                 for p in graph.populations}
    parts = [_core(net, placement, k) for k in range(cores)]
    for core in parts:
        for what, (n, cap) in core.needs(limits).items():
            if n > cap:
                return placement, parts, (
                    f"core {core.index} ({alloc.name} placement on {used} cores): {n} {what} "
                    f"needed{core.neuron_split(what)}, {cap} available ({n - cap} too many)")
    return placement, parts, None


def _slice_neuron(model, idx: np.ndarray):
    m = copy.copy(model)
    for f in m.param_names():
        v = getattr(m, f)
        if np.ndim(v):
            setattr(m, f, np.asarray(v)[idx])
    return m


def _core(net: Network, placement: dict[str, np.ndarray], k: int) -> Core:
    """Core k's network: sources (inputs, then proxies), its parts, the weight blocks."""
    parts = {p: np.flatnonzero(c == k) for p, c in placement.items()}
    parts = {p: i for p, i in parts.items() if i.size}
    if not parts:
        return Core(k, None, {}, {}, [])
    order = {p.name: i for i, p in enumerate(net.populations)}
    need: dict[tuple[str, int, bool], np.ndarray] = {}  # (population, lag, proxy) -> used
    for pr in net.projections:
        if pr.target not in parts:
            continue
        conn = pr.connections()[parts[pr.target]]
        if pr.source in placement:
            remote = placement[pr.source] != k
            key, used = (pr.source, 0 if pr.delay == 0 else 1, True), conn.any(0) & remote
        else:
            key, used = (pr.source, 0, False), conn.any(0)
        if used.any():
            need[key] = need.get(key, np.zeros_like(used)) | used
    keys = sorted(need, key=lambda x: (x[2], order[x[0]], x[1]))
    sources = {}
    for pop, lag, proxy in keys:
        name = f"{pop}.{LAG_NAMES[lag]}" if proxy else pop
        if proxy and any(p.name == name for p in net.populations):
            raise NetworkError(f"partition: population name {name!r} is taken; it names the "
                               f"proxy of {pop!r} on a core")
        sources[name] = Source(pop, np.flatnonzero(need[(pop, lag, proxy)]), lag, proxy)
    local = Network(dt=net.dt, quantization=dataclasses.replace(net.quantization),
                    name=f"{net.name or 'network'}.core{k}")
    for name, src in sources.items():
        local.add_input(name, int(src.indices.size),
                        net.population(src.population).encoding if not src.proxy else "spikes")
    for pop in net.neuron_populations:
        if pop.name in parts:
            local.add_population(pop.name, int(parts[pop.name].size),
                                 _slice_neuron(pop.neuron, parts[pop.name]))
    blocks = []
    for j, pr in enumerate(net.projections):
        if pr.target not in parts:
            continue
        tgt = parts[pr.target]
        if pr.source not in placement:  # a network input
            cands = [pr.source]
        else:  # the local part (if any), then the proxy of the other cores' neurons
            lag = 0 if pr.delay == 0 else 1
            cands = [pr.source] * (pr.source in parts) + [f"{pr.source}.{LAG_NAMES[lag]}"]
        for name in cands:
            if name in sources:
                srcs, delay = sources[name].indices, pr.delay - sources[name].lag
            elif name in parts:
                srcs, delay = parts[name], pr.delay
            else:
                continue
            ix = np.ix_(tgt, srcs)
            conn_all, w_all = pr.connections(), pr.dense_weight()
            conn = conn_all[ix]
            if not conn.any():
                continue
            # a convolution goes to the cores as its dense expansion (as the compiler stores it)
            mask = pr.mask if pr.conv is None else conn_all
            local.connect(name, pr.target,
                          w_all[ix], mask=None if mask is None else mask[ix],
                          delay=delay, stdp=copy.copy(pr.stdp),
                          plastic_mask=None if pr.plastic_mask is None
                          else pr.plastic_mask[ix])
            blocks.append((j, tgt, srcs))
    return Core(k, local, parts, sources, blocks)


def _waves(net: Network, placement: dict[str, np.ndarray], cores: list[Core]) -> list[list[int]]:
    """Topological levels of the cores' delay-0 dependencies (the step schedule).

    Raises
    ------
    NetworkError : the dependencies form a cycle (no schedule computes it exactly)
    """
    k = len(cores)
    after = {c: set() for c in range(k)}  # core -> cores it waits for within a step
    for core in cores:
        for src in core.sources.values():
            if src.proxy and src.lag == 0:
                after[core.index] |= set(np.unique(placement[src.population][src.indices])
                                         .tolist())
    waves, done = [], set()
    active = [c.index for c in cores if c.net is not None]
    while len(done) < len(active):
        ready = [c for c in active if c not in done and after[c] <= done]
        if not ready:
            stuck = sorted(c for c in active if c not in done)
            raise NetworkError(f"partition: cores {stuck} wait for each other within a step "
                               f"(a cycle of delay-0 projections across cores); use the "
                               f"in_order allocator, or delays >= 1 between those populations")
        waves.append(ready)
        done |= set(ready)
    return waves
