"""Clock-driven simulation of a Network in float (torch) or in the hardware's fixed point.

Both backends run the same loop and the same step functions; only the arithmetic and the
encoding of the parameters differ. Order inside one step (docs/fixed-point.md):

1. populations in network order: sum the weights of spikes arriving now (sources spiking at
   ``t - delay``; delay 0 means this step's spikes of an earlier population), then update
   the neurons;
2. STDP on every plastic projection, with this step's arrivals and target spikes.

A network without plasticity and without backward projections runs layer by layer over all
steps at once (one matrix product per projection instead of one per step): same results. On
the CPU a layer is then one call of a C kernel (:mod:`snnkit.kernels`: event-driven sums of
the spiking sources' weight rows and the neuron update of all steps in one pass); it is
bit-exact in fixed point, and differs from the torch path only in float summation order.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from . import kernels
from .arith import Arith, FixedArith, FloatArith, int_matmul
from .errors import SimulationError
from .inputs import check_inputs
from .network import Network
from .neurons import TENSOR_PARAMS, NeuronParams, initial_state, neuron_step
from .plasticity import STDPParams, STDPState, stdp_step
from .quantize import auto_quantization, encode, integer_neuron, integer_stdp, integer_weights
from .result import Result

RECORDABLE = ("v", "i", "theta", "weights")


# --------------------------------------------------------------------------- plans


@dataclass
class _Proj:
    index: int
    source: str
    target: str
    delay: int
    w: torch.Tensor  # [target, source]; float32 or int64
    current: bool  # source is a current input (fixed point: product needs a shift)
    stdp: STDPParams | None
    bound: int  # fixed point: max |partial sum| of a product, for exact BLAS
    weight_bits: int = 0  # fixed point: the weights' width (they fit it)

    def __post_init__(self):
        self._wt = self._kw = self._kv = None

    @property
    def wt(self) -> torch.Tensor:
        """The transposed copy the matrix products read (weights of a static projection
        never change, so it is made once, when first needed)."""
        if self._wt is None:
            self._wt = self.w.T.contiguous()
        return self._wt

    def kernel_weights(self, bf16: bool = False) -> torch.Tensor | None:
        """The CPU kernel's layout of the weights: float32 (rounded to bf16 first for
        ``precision="bf16"``: float32 sums of bf16 weights, as the matrix units compute), or
        the narrowest integer type that holds ``weight_bits`` (int8, int16); None if wider."""
        if self._kw is None:
            dt = self.w.dtype
            if bf16:
                self._kw = kernels.pad_weights(self.w.to(torch.bfloat16).T, dt)
                return self._kw
            if dt != torch.float32:
                if self.weight_bits > 16:
                    return None
                dt = torch.int8 if self.weight_bits <= 8 else torch.int16
            # narrow first: the transposing copy then moves 1-2 bytes per weight, not 8
            self._kw = kernels.pad_weights(self.w.to(dt).T, dt)
        return self._kw

    def amx_weights(self) -> torch.Tensor:
        """The 8-bit kernel weights packed for the kernel's AMX path (:func:`kernels.pack_amx`)."""
        if self._kv is None:
            self._kv = kernels.pack_amx(self.kernel_weights(), self.w.shape[0])
        return self._kv


@dataclass
class _Plan:
    ar: Arith
    neurons: dict[str, NeuronParams]
    v_init: dict[str, torch.Tensor]
    projs: list[_Proj]
    fixed: bool
    frac: int = 0
    lsb: float | None = None
    precision: str = "fp32"  # float backend: "fp32", or "bf16" matmul inputs (fp32 accumulate)


def _float_plan(net: Network, device, learning) -> _Plan:
    f32 = dict(dtype=torch.float32, device=device)
    neurons, v_init = {}, {}
    for pop in net.neuron_populations:
        d = {k: torch.tensor(v, **f32) for k, v in pop.neuron.dynamics(pop.size).items()}
        t = {k: d[k] for k in TENSOR_PARAMS}
        neurons[pop.name] = NeuronParams(**t, subtract=pop.neuron.reset == "subtract",
                                         refractory=pop.neuron.refractory, **_skips(t))
        v_init[pop.name] = d["v_init"]
    projs = []
    for i, pr in enumerate(net.projections):
        stdp = None
        if pr.stdp is not None and (pr.stdp.enabled if learning is None else learning):
            s = pr.stdp
            stdp = STDPParams(a_plus=s.a_plus, a_minus=s.a_minus, pre_decay=s.pre_decay,
                              post_decay=s.post_decay, nearest=s.rule == "nearest",
                              soft=s.bounds == "soft", w_min=s.w_min, w_max=s.w_max,
                              shift_hard=0, shift_soft=0, plastic=_plastic(pr, device))
        projs.append(_Proj(i, pr.source, pr.target, pr.delay, torch.tensor(pr.weight, **f32),
                           net.population(pr.source).encoding == "current", stdp, 0))
    return _Plan(FloatArith(), neurons, v_init, projs, fixed=False)


def _skips(t: dict[str, torch.Tensor]) -> dict[str, bool]:
    """The flags that let :func:`neuron_step` skip work known to be zero."""
    return {"adaptive": bool((t["adapt_plus"] != 0).any()),
            "has_alpha": bool((t["alpha"] != 0).any()),
            "has_bias": bool((t["bias"] != 0).any())}


def _plastic(pr, device) -> torch.Tensor:
    m = pr.connections()
    if pr.plastic_mask is not None:
        m = m & pr.plastic_mask
    return torch.tensor(m, device=device)


def _fixed_plan(net: Network, q, device, learning) -> _Plan:
    """The integers of ``net`` in format ``q``. A float network is encoded directly: the same
    integers as encoding ``quantize(net)`` (its values are those integers times a power of
    two), without the copy and the error report."""
    i64 = dict(dtype=torch.int64, device=device)
    projs = []
    w_abs = 1 << (q.weight_bits - 1)
    for i, pr in enumerate(net.projections):
        w = torch.as_tensor(integer_weights(net, i, q), **i64)  # int64 already: no copy
        src = net.population(pr.source)
        current = src.encoding == "current"
        x_abs = (1 << (q.state_bits - 1)) if current else 1
        stdp = None
        if pr.stdp is not None and (pr.stdp.enabled if learning is None else learning):
            s = integer_stdp(net, i, q)
            stdp = STDPParams(a_plus=s.a_plus, a_minus=s.a_minus, pre_decay=s.pre_decay,
                              post_decay=s.post_decay, nearest=s.nearest, soft=s.soft,
                              w_min=s.w_min, w_max=s.w_max, shift_hard=s.shift_hard,
                              shift_soft=s.shift_soft, plastic=_plastic(pr, device))
        projs.append(_Proj(i, pr.source, pr.target, pr.delay, w, current, stdp,
                           w_abs * x_abs * src.size, q.weight_bits))
    neurons, v_init = {}, {}
    for pop in net.neuron_populations:
        ip = integer_neuron(net, pop, q)
        dt = _state_dtype(q, sum(p.bound for p in projs if p.target == pop.name))
        t = {k: torch.tensor(getattr(ip, k), dtype=dt, device=device) for k in TENSOR_PARAMS}
        neurons[pop.name] = NeuronParams(**t, subtract=ip.subtract, refractory=ip.refractory,
                                         **_skips(t))
        v_init[pop.name] = torch.tensor(ip.v_init, dtype=dt, device=device)
    return _Plan(FixedArith(q), neurons, v_init, projs, fixed=True, frac=q.frac_bits,
                 lsb=2.0 ** -q.frac_bits)


def _state_dtype(q, input_bound: int) -> torch.dtype:
    """int32 when no intermediate of the neuron update can leave it (twice as fast as int64):
    a decay product needs state_bits + decay_bits + 1 bits, the input sum plus a state must fit
    too. Otherwise int64. The arithmetic is the same either way."""
    if q.state_bits + q.decay_bits + 1 <= 31 and input_bound < (1 << 30):
        return torch.int32
    return torch.int64


# --------------------------------------------------------------------------- synapses


def _encode_input(plan: _Plan, x: torch.Tensor, pop, net) -> torch.Tensor:
    """Input tensor in the plan's arithmetic: spikes stay bool, currents become int in fixed."""
    if pop.encoding == "spikes" or not plan.fixed:
        return x if pop.encoding == "spikes" else x.to(torch.float32)
    q = net.quantization
    xq = torch.from_numpy(encode(x.cpu().numpy(), q.frac_bits)).to(x.device)
    lo, hi = -(1 << (q.state_bits - 1)), (1 << (q.state_bits - 1)) - 1
    if xq.min() < lo or xq.max() > hi:
        raise SimulationError(f"inputs[{pop.name!r}]: a current value does not fit the "
                              f"{q.state_bits}-bit state with {q.frac_bits} fractional bits")
    return xq


def _synaptic(plan: _Plan, pr: _Proj, src: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Input to the target from source activity ``src`` (``[..., source]``)."""
    if w.dim() == 3:  # per-sample weights (plasticity): src [batch, source]
        if plan.fixed:
            dt = torch.float32 if pr.bound < (1 << 24) else torch.float64
            return torch.einsum("bs,bts->bt", src.to(dt), w.to(dt)).round().to(torch.int64)
        return torch.einsum("bs,bts->bt", src.to(w.dtype), w)
    wt = pr.wt if w is pr.w else w.T
    if not plan.fixed:
        if plan.precision == "bf16":
            with _bf16_matmul(src.device):
                return src.to(w.dtype) @ wt
        return src.to(w.dtype) @ wt
    acc = int_matmul(src, wt, pr.bound, torch.int32 if pr.bound < (1 << 30) else torch.int64)
    if pr.current:  # (value * weight) carries 2*frac fractional bits: round back to frac
        acc = (acc + (1 << (plan.frac - 1))) >> plan.frac if plan.frac else acc
    return acc


class _bf16_matmul:
    """Let float32 matmuls round their inputs to bf16 (AMX on CPU, tensor cores on CUDA) while
    accumulating and returning float32. Spikes are exact in bf16; weights lose precision
    (8 significant bits)."""

    def __init__(self, device):
        cuda = torch.device(device).type == "cuda"
        self.backend = torch.backends.cuda.matmul if cuda else torch.backends.mkldnn.matmul
        self.value = "tf32" if cuda else "bf16"

    def __enter__(self):
        self.old = self.backend.fp32_precision
        self.backend.fp32_precision = self.value

    def __exit__(self, *exc):
        self.backend.fp32_precision = self.old


# --------------------------------------------------------------------------- the loop


def _layerwise_ok(net: Network, plan: _Plan) -> bool:
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
    steps : number of time steps (default: the inputs' length; must equal it)
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
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.net, self.backend, self.device = _structure(net), backend, device
        if backend == "fixed":
            q = net.quantization or auto_quantization(net)
            self.plan = _fixed_plan(net, q, device, learning)
            self.net.quantization = q
        else:
            self.plan = _float_plan(net, device, learning)
            self.plan.precision = precision
        self._run = _run_layerwise if _layerwise_ok(net, self.plan) else _run_stepwise

    def run(self, inputs, steps: int | None = None, *, record=(),
            progress: bool = False) -> Result:
        """Simulate ``inputs`` (as for :func:`simulate`) from the initial state."""
        record = _record_names(record)
        net, plan = self.net, self.plan
        arrays, steps, batch = check_inputs(net, inputs, steps)
        x = {p.name: _encode_input(plan, arrays[p.name].to(self.device), p, net)
             for p in net.inputs}
        with torch.no_grad():
            res = self._run(net, plan, x, steps, batch, set(record), self.backend, progress)
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
    pops = net.neuron_populations
    lib = _kernel_for(plan)
    if progress and lib is not None:  # the kernel runs all steps at once: count populations
        from tqdm.auto import tqdm

        pops = tqdm(pops, desc="simulate", unit="population", leave=False)
    for pop in pops:
        p = plan.neurons[pop.name]
        if lib is not None and _layer_kernel(lib, plan, pop, spikes, states, steps, batch,
                                             record):
            continue
        acc = _summed_input(plan, pop, [pr for pr in plan.projs if pr.target == pop.name],
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


def _kernel_for(plan: _Plan):
    """The CPU kernel library when it can run this plan (float32 or int32 states on the
    CPU), else None."""
    dev = next(iter(plan.v_init.values())).device if plan.v_init else torch.device("cpu")
    if dev.type != "cpu":
        return None
    if any(v.dtype not in (torch.float32, torch.int32) for v in plan.v_init.values()):
        return None
    return kernels.load()


def _delayed(src: torch.Tensor, delay: int, steps: int) -> torch.Tensor:
    if not delay:
        return src
    pad = torch.zeros((delay,) + src.shape[1:], dtype=src.dtype, device=src.device)
    return torch.cat([pad, src[:steps - delay]])[:steps]


def _summed_input(plan, pop, projs, spikes, steps, batch) -> torch.Tensor | None:
    """Synaptic input ``[steps, batch, n]`` of ``pop`` from ``projs`` over all steps (one
    matrix product per projection), in the state dtype; None when ``projs`` is empty."""
    acc = None
    for pr in projs:
        src = _delayed(spikes[pr.source], pr.delay, steps)
        c = _synaptic(plan, pr, src.reshape(steps * batch, -1), pr.w)
        c = c.reshape(steps, batch, -1).to(plan.v_init[pop.name].dtype)
        acc = c if acc is None else acc + c
    return acc


def _layer_kernel(lib, plan, pop, spikes, states, steps, batch, record) -> bool:
    """Run population ``pop`` over all steps with the CPU kernel: spiking sources as event
    lists, current sources as a dense input computed by torch. False if it cannot."""
    ev, rest = [], []
    for pr in plan.projs:
        if pr.target != pop.name:
            continue
        kw = (pr.kernel_weights(plan.precision == "bf16")
              if spikes[pr.source].dtype == torch.bool else None)
        if kw is None:
            rest.append(pr)
        else:
            ev.append((_delayed(spikes[pr.source], pr.delay, steps), kw, pr))
    if len({e[1].dtype for e in ev}) > 1 or (ev and sum(e[1].numel() for e in ev) >= 1 << 31):
        return False
    dense = _summed_input(plan, pop, rest, spikes, steps, batch)
    x = wt = wv = None
    if ev:
        x = torch.cat([e[0] for e in ev], dim=-1) if len(ev) > 1 else ev[0][0]
        x = x.reshape(steps * batch, -1)
        wt = kernels.concat_rows([e[1] for e in ev])
        if lib.amx and wt.dtype == torch.int8:  # 8-bit sums may run on the tile unit
            wv = ev[0][2].amx_weights() if len(ev) == 1 else kernels.pack_amx(wt, pop.size)
    ar = plan.ar
    out, rec = kernels.run_layer(lib, x, wt, dense, plan.neurons[pop.name], plan.v_init[pop.name],
                                 steps, batch, record,
                                 (ar.D, ar.lo, ar.hi) if plan.fixed else None, wv)
    spikes[pop.name] = out
    if rec:
        states[pop.name] = rec
    return True


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
                    acc = acc + _synaptic(plan, pr, arriving(pr, t, now),
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
