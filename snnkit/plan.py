"""A network laid out for one simulation backend: every parameter as a tensor in the
backend's arithmetic (float32, or the fixed-point integers of docs/fixed-point.md), made once
per :class:`~snnkit.simulator.Simulator` and read by every step."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import kernels
from .arith import Arith, FixedArith, FloatArith
from .conv import Conv
from .errors import SimulationError
from .network import Network
from .neurons import TENSOR_PARAMS, NeuronParams
from .plasticity import STDPParams
from .quantize import encode, integer_neuron, integer_stdp, integer_weights


@dataclass
class Proj:
    index: int
    source: str
    target: str
    delay: int
    w: torch.Tensor  # [target, source] (conv: the kernel); float32 or int64
    current: bool  # source is a current input (fixed point: product needs a shift)
    stdp: STDPParams | None
    bound: int  # fixed point: max |partial sum| of a product, for exact BLAS
    weight_bits: int = 0  # fixed point: the weights' width (they fit it)
    conv: Conv | None = None  # a convolution: summed by snnkit.conv.conv_sum

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
        the narrowest integer type that holds ``weight_bits`` (int8, int16); None if wider,
        and for a convolution (summed by torch's convolution into a dense input)."""
        if self.conv is not None:
            return None
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
class Plan:
    ar: Arith
    neurons: dict[str, NeuronParams]
    v_init: dict[str, torch.Tensor]
    projs: list[Proj]
    fixed: bool
    frac: int = 0
    lsb: float | None = None
    precision: str = "fp32"  # float backend: "fp32", or "bf16" matmul inputs (fp32 accumulate)


def float_plan(net: Network, device, learning) -> Plan:
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
        projs.append(Proj(i, pr.source, pr.target, pr.delay, torch.tensor(pr.weight, **f32),
                           net.population(pr.source).encoding == "current", stdp, 0,
                           conv=pr.conv))
    return Plan(FloatArith(), neurons, v_init, projs, fixed=False)


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


def fixed_plan(net: Network, q, device, learning) -> Plan:
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
        fan_in = src.size if pr.conv is None else pr.conv.fan_in
        projs.append(Proj(i, pr.source, pr.target, pr.delay, w, current, stdp,
                           w_abs * x_abs * fan_in, q.weight_bits, pr.conv))
    neurons, v_init = {}, {}
    for pop in net.neuron_populations:
        ip = integer_neuron(net, pop, q)
        dt = _state_dtype(q, sum(p.bound for p in projs if p.target == pop.name))
        t = {k: torch.tensor(getattr(ip, k), dtype=dt, device=device) for k in TENSOR_PARAMS}
        neurons[pop.name] = NeuronParams(**t, subtract=ip.subtract, refractory=ip.refractory,
                                         **_skips(t))
        v_init[pop.name] = torch.tensor(ip.v_init, dtype=dt, device=device)
    return Plan(FixedArith(q), neurons, v_init, projs, fixed=True, frac=q.frac_bits,
                 lsb=2.0 ** -q.frac_bits)


def _state_dtype(q, input_bound: int) -> torch.dtype:
    """int32 when no intermediate of the neuron update can leave it (twice as fast as int64):
    a decay product needs state_bits + decay_bits + 1 bits, the input sum plus a state must fit
    too. Otherwise int64. The arithmetic is the same either way."""
    if q.state_bits + q.decay_bits + 1 <= 31 and input_bound < (1 << 30):
        return torch.int32
    return torch.int64


def encode_input(plan: Plan, x: torch.Tensor, pop, net) -> torch.Tensor:
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
