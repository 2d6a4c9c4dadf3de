"""Clock-driven simulation of a Network in float (torch) or in the hardware's fixed point.

Both backends run the same loop and the same step functions; only the arithmetic and the
encoding of the parameters differ. Order inside one step (docs/fixed-point.md):

1. populations in network order: sum the weights of spikes arriving now (sources spiking at
   ``t - delay``; delay 0 means this step's spikes of an earlier population), then update
   the neurons;
2. STDP on every plastic projection, with this step's arrivals and target spikes.

On the CPU every network runs on the C kernel (:mod:`snnkit.cpu_path`, :mod:`snnkit.kernels`):
populations fed only by earlier ones layer by layer over all steps, groups of populations
that feed each other and plastic projections step by step, every sum event-driven (the weight
rows of the sources that spike). It is bit-exact in fixed point and differs from the torch
path only in float summation order. The torch path (CUDA, ``SNNKIT_KERNELS=0``, no C
compiler) runs a network without plasticity and without backward projections layer by layer
too (one matrix product per projection instead of one per step), any other step by step.
"""

from __future__ import annotations

import copy

import torch

from . import cpu_path, kernels
from .errors import SimulationError
from .inputs import check_inputs
from .network import Network
from .neurons import initial_state, neuron_step
from .plan import (
    Plan,
    encode_input,
    fixed_plan,
    float_plan,
    summed_input,
    synaptic,
    torch_device,
)
from .plasticity import STDPState, stdp_step
from .quantize import auto_quantization
from .result import Result

RECORDABLE = ("v", "i", "theta", "weights")


# --------------------------------------------------------------------------- the loop


def _kernel_for(plan: Plan):
    """The CPU kernel library when it can run this plan (states on the CPU; int64 states only
    where the sums of spiking sources' weights fit int32, as the kernel adds them), else
    None."""
    dev = next(iter(plan.v_init.values())).device if plan.v_init else torch.device("cpu")
    if dev.type != "cpu":
        return None
    for name, v in plan.v_init.items():
        if v.dtype == torch.int64 and sum(p.bound for p in plan.projs
                                          if p.target == name and not p.current) >= 1 << 30:
            return None
    return kernels.load()


def _layerwise_ok(net: Network, plan: Plan) -> bool:
    if any(p.stdp is not None for p in plan.projs):
        return False
    return all(net.index_of(p.source) < net.index_of(p.target) for p in net.projections)


def simulate(net: Network, inputs, steps: int | None = None, backend: str = "float", *,
             record=(), learning: bool | None = None, device=None, progress: bool = False,
             precision: str = "fp32", **backend_options) -> Result:
    """Run ``net`` on ``inputs`` for ``steps`` steps.

    Parameters
    ----------
    net : the network
    inputs : ``[steps, batch, n_inputs]`` (input populations concatenated in order) or
        ``{input population: [steps, batch, size]}``; spikes as bool or 0/1 numbers
    steps : number of time steps (default: the inputs' length; a smaller number runs the
        inputs' first steps)
    backend : "float" (torch), "fixed" (bit-exact hardware arithmetic), "verilator", "icarus"
    record : states to record per step: any of "v", "i", "theta", "weights"
    learning : override every projection's ``stdp.enabled`` for this run
    device : torch device; default CUDA when available, else CPU
    progress : show a progress bar (over time steps; over populations where the CPU kernel
        runs a population's steps all at once: see :mod:`snnkit.kernels`)
    precision : float backend only: "fp32" (default), or "bf16": synaptic weights rounded to
        bf16 (8 significant bits), sums in float32, so results differ slightly from "fp32".
        Faster on the torch path (CUDA, plasticity: matrix products on AMX / tensor cores);
        the CPU kernel runs both at the same speed
    backend_options : RTL backends: ``config`` (a HardwareConfig), ``cache_dir``; and
        ``cores`` = K > 1 runs the network partitioned over the multi-core design
        (:mod:`snnkit.multicore`; ``config`` is then one core's size, ``allocator`` "metis"
        or "in_order")

    Running the same network many times? :class:`Simulator` prepares it once.

    Returns
    -------
    :class:`~snnkit.result.Result`

    Raises
    ------
    SimulationError : bad inputs, steps, backend or record names
    NetworkError : the network does not fit the fixed-point format
    """
    if backend in ("verilator", "icarus"):
        if precision != "fp32":
            raise SimulationError(f"precision: only the float backend has a choice (backend "
                                  f"{backend!r} is exact)")
        if device is not None:
            raise SimulationError(f"device: only the float and fixed backends run on a torch "
                                  f"device (backend {backend!r} runs the RTL), got {device!r}")
        from .compiler import HardwareConfig

        config = backend_options.get("config")
        if config is not None and not isinstance(config, HardwareConfig):
            raise SimulationError(f"config: must be a snnkit.compiler.HardwareConfig, got "
                                  f"{type(config).__name__} (HardwareConfig.for_network(net, "
                                  f"**sizes) makes one)")
        cores = backend_options.pop("cores", 1)
        if not isinstance(cores, int) or isinstance(cores, bool) or cores < 1:
            raise SimulationError(f"cores: must be a positive integer, got {cores!r}")
        if cores > 1:  # partitioned over the multi-core design (K cores, spike router)
            from .multicore import run_multi

            unknown = sorted(set(backend_options) - {"config", "cache_dir", "allocator"})
            if unknown:
                raise SimulationError(f"unexpected options for backend {backend!r} with cores: "
                                      f"{unknown} (known: config, cache_dir, allocator)")
            return run_multi(net, inputs, steps, backend, cores, record=_record_names(record),
                             learning=learning, **backend_options).result
        from .rtl_backend import simulate_rtl

        return simulate_rtl(net, inputs, steps, backend, record=_record_names(record),
                            learning=learning, progress=progress, **backend_options)
    if backend_options:
        raise SimulationError(f"unexpected options for backend {backend!r}: "
                              f"{sorted(backend_options)}")
    sim = Simulator(net, backend, learning=learning, device=device, precision=precision)
    return sim.run(inputs, steps, record=record, progress=progress)


def _structure(net: Network) -> Network:
    """A copy of ``net``'s lists and records (names, sizes, delays, encodings) for a
    Simulator to run by: the plan holds every parameter already, so the arrays are shared,
    but a population added or a projection replaced afterwards does not reach the run."""
    out = copy.copy(net)
    out.populations = [copy.copy(p) for p in net.populations]
    out.projections = [copy.copy(p) for p in net.projections]
    out.quantization = copy.copy(net.quantization)
    return out


def _record_names(record) -> tuple:
    if isinstance(record, str):
        record = (record,)
    bad = [r for r in record if r not in RECORDABLE]
    if bad:
        raise SimulationError(f"record: unknown state(s) {bad}; choose from {list(RECORDABLE)}")
    return tuple(record)


class Simulator:
    """A network prepared once for many runs in the float or fixed-point backend.

    Building it quantises (fixed point), encodes and lays out every parameter; :meth:`run`
    then only simulates, as a torch module holding its weights does. It is a snapshot:
    changes to ``net`` afterwards are not seen, so build a new one after editing the network.

    Example::

        sim = snnkit.Simulator(net, backend="fixed")
        for x in batches:
            counts = sim.run(x).counts("out")
    """

    def __init__(self, net: Network, backend: str = "float", *, learning: bool | None = None,
                 device=None, precision: str = "fp32"):
        if backend in ("verilator", "icarus"):
            raise SimulationError(f"backend: Simulator prepares 'float' and 'fixed' runs; "
                                  f"use simulate(..., backend={backend!r}) for the RTL")
        if backend not in ("float", "fixed"):
            raise SimulationError(f"backend: unknown backend {backend!r}; choose from "
                                  f"'float', 'fixed', 'verilator', 'icarus'")
        if precision not in ("fp32", "bf16"):
            raise SimulationError(f"precision: must be 'fp32' or 'bf16', got {precision!r}")
        if precision != "fp32" and backend != "float":
            raise SimulationError(f"precision: only the float backend has a choice "
                                  f"(backend {backend!r} is exact)")
        device = torch_device(device)
        self.net, self.backend, self.device = _structure(net), backend, device
        if backend == "fixed":
            q = net.quantization or auto_quantization(net)
            self.plan = fixed_plan(net, q, device, learning)
            self.net.quantization = q
        else:
            self.plan = float_plan(net, device, learning)
            self.plan.precision = precision
        self._run = _run_layerwise if _layerwise_ok(net, self.plan) else _run_stepwise

    def run(self, inputs, steps: int | None = None, *, record=(),
            progress: bool = False) -> Result:
        """Simulate ``inputs`` (as for :func:`simulate`) from the initial state."""
        record = _record_names(record)
        net, plan = self.net, self.plan
        arrays, steps, batch = check_inputs(net, inputs, steps)
        x = {p.name: encode_input(plan, arrays[p.name].to(self.device), p, net)
             for p in net.inputs}
        lib = _kernel_for(plan)
        with torch.no_grad():
            if lib is not None:
                res = cpu_path.run(lib, net, plan, x, steps, batch, set(record), self.backend,
                                   progress)
            else:
                res = self._run(net, plan, x, steps, batch, set(record), self.backend,
                                progress)
        for pr in plan.projs:  # plastic projections whose learning was off keep their weights
            name = net.projections[pr.index].name
            if net.projections[pr.index].stdp is not None and name not in res.weights:
                res.weights[name] = pr.w.expand(batch, -1, -1).clone()
        return res


def _progress(steps: int, show: bool, desc: str):
    if not show:
        return range(steps)
    from tqdm.auto import tqdm

    return tqdm(range(steps), desc=desc, unit="step", leave=False)


def _run_layerwise(net, plan, x, steps, batch, record, backend, progress) -> Result:
    spikes: dict[str, torch.Tensor] = dict(x)
    states: dict[str, dict[str, torch.Tensor]] = {}
    for pop in net.neuron_populations:
        p = plan.neurons[pop.name]
        acc = summed_input(plan, pop.name, [pr for pr in plan.projs if pr.target == pop.name],
                           spikes, steps, batch)
        if acc is None:
            acc = torch.zeros(steps, batch, pop.size, dtype=plan.v_init[pop.name].dtype,
                              device=plan.v_init[pop.name].device)
        st = initial_state(plan.v_init[pop.name], batch)
        out = torch.empty(steps, batch, pop.size, dtype=torch.bool, device=acc.device)
        rec = {k: torch.empty(steps, batch, pop.size, dtype=st.v.dtype, device=acc.device)
               for k in ("v", "i", "theta") if k in record}
        for t in _progress(steps, progress, pop.name):
            out[t], st = neuron_step(acc[t], st, p, plan.ar)
            for k, buf in rec.items():
                buf[t] = getattr(st, k)
        spikes[pop.name] = out
        if rec:
            states[pop.name] = rec
    spikes = {p.name: spikes[p.name] for p in net.populations if p.encoding != "current"}
    return Result(backend, steps, batch, spikes, states, lsb=plan.lsb)


def _run_stepwise(net, plan, x, steps, batch, record, backend, progress) -> Result:
    dev = plan.v_init[net.neuron_populations[0].name].device if plan.v_init else "cpu"
    depth = max([p.delay for p in plan.projs], default=0) + 1
    hist = {p.name: torch.zeros((depth, batch, p.size), dtype=torch.bool, device=dev)
            for p in net.populations if p.encoding != "current"}
    state = {name: initial_state(v0, batch) for name, v0 in plan.v_init.items()}
    weights = {pr.index: (pr.w.expand(batch, -1, -1).clone() if pr.stdp else pr.w)
               for pr in plan.projs}
    traces = {pr.index: (torch.zeros(batch, pr.w.shape[1], dtype=pr.w.dtype, device=dev),
                         torch.zeros(batch, pr.w.shape[0], dtype=pr.w.dtype, device=dev))
              for pr in plan.projs if pr.stdp}
    out = {p.name: torch.empty(steps, batch, p.size, dtype=torch.bool, device=dev)
           for p in net.populations if p.encoding != "current"}
    rec = {name: {k: torch.empty((steps,) + st.v.shape, dtype=st.v.dtype, device=dev)
                  for k in ("v", "i", "theta") if k in record} for name, st in state.items()}
    wrec = {pr.index: torch.empty((steps, *weights[pr.index].shape), dtype=pr.w.dtype,
                                  device=dev)
            for pr in plan.projs if pr.stdp and "weights" in record}

    def arriving(pr, t, now):
        if pr.delay == 0:
            return now[pr.source]
        if pr.current:
            src = x[pr.source]
            return src[t - pr.delay] if t >= pr.delay else torch.zeros_like(src[0])
        return hist[pr.source][(t - pr.delay) % depth]  # zeros before step 0

    for t in _progress(steps, progress, "simulate"):
        now = {p.name: x[p.name][t] for p in net.inputs}
        for pop in net.neuron_populations:
            acc = torch.zeros(batch, pop.size, dtype=plan.v_init[pop.name].dtype, device=dev)
            for pr in plan.projs:
                if pr.target == pop.name:
                    acc = acc + synaptic(plan, pr, arriving(pr, t, now),
                                          weights[pr.index]).to(acc.dtype)
            now[pop.name], state[pop.name] = neuron_step(acc, state[pop.name],
                                                         plan.neurons[pop.name], plan.ar)
            for k, buf in rec[pop.name].items():
                buf[t] = getattr(state[pop.name], k)
        for pr in plan.projs:
            if pr.stdp:
                x_pre, x_post = traces[pr.index]
                s = stdp_step(arriving(pr, t, now), now[pr.target],
                              STDPState(w=weights[pr.index], x_pre=x_pre, x_post=x_post),
                              pr.stdp, plan.ar)
                weights[pr.index], traces[pr.index] = s.w, (s.x_pre, s.x_post)
                if pr.index in wrec:
                    wrec[pr.index][t] = s.w
        for name, h in hist.items():
            h[t % depth] = now[name]
            out[name][t] = now[name]
    names = {pr.index: net.projections[pr.index].name for pr in plan.projs}
    spikes = {p.name: out[p.name] for p in net.populations if p.name in out}
    return Result(backend, steps, batch, spikes, {k: v for k, v in rec.items() if v},
                  {names[i]: weights[i] for i in traces},
                  {names[i]: w for i, w in wrec.items()}, lsb=plan.lsb)
