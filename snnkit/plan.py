"""A network laid out for one simulation backend: every parameter as a tensor in the
backend's arithmetic (float32, or the fixed-point integers of docs/fixed-point.md), made once
per :class:`~snnkit.simulator.Simulator` and read by every step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import kernels
from .arith import Arith, FixedArith, FloatArith, int_matmul
from .conv import Conv, conv_sum
from .errors import SimulationError
from .network import Network
from .neurons import TENSOR_PARAMS, NeuronParams, delayed_reset_inputs
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
        self._wt = self._kw = self._kv = self._pw = self._pm = None

    @property
    def wt(self) -> torch.Tensor:
        """The transposed copy the matrix products read (weights of a static projection
        never change, so it is made once, when first needed)."""
        if self._wt is None:
            self._wt = self.w.T.contiguous()
        return self._wt

    def kernel_weights(self, bf16: bool = False) -> torch.Tensor:
        """The CPU kernel's layout of the weights: float32 (rounded to bf16 first for
        ``precision="bf16"``: float32 sums of bf16 weights, as the matrix units compute), or
        the narrowest integer type that holds ``weight_bits`` (int8, int16; at most 16). A
        convolution's are its dense ``[target, source]`` matrix (for the step kernel, where a
        convolution feeds its own group; elsewhere torch's convolution sums it:
        :func:`synaptic`)."""
        if self._kw is None:
            w = self.w if self.conv is None else torch.from_numpy(
                self.conv.dense(self.w.cpu().numpy())).to(self.w.device)
            dt = w.dtype
            if bf16:
                self._kw = kernels.pad_weights(w.to(torch.bfloat16).T, dt)
                return self._kw
            if dt != torch.float32:
                dt = torch.int8 if self.weight_bits <= 8 else torch.int16
            # narrow first: the transposing copy then moves 1-2 bytes per weight, not 8
            self._kw = kernels.pad_weights(w.to(dt).T, dt)
        return self._kw

    def amx_weights(self) -> torch.Tensor:
        """The 8-bit kernel weights packed for the kernel's AMX path (:func:`kernels.pack_amx`)."""
        if self._kv is None:
            self._kv = kernels.pack_amx(self.kernel_weights(), self.w.shape[0])
        return self._kv

    def plastic_weights(self) -> torch.Tensor:
        """A plastic projection's initial weights in the step kernel's layout (padded
        ``[source, target]``; float32, or the narrowest of int8 and int16 that holds
        ``weight_bits``: STDP keeps them within the weights' width, its bounds too), made
        once; each run learns on copies."""
        if self._pw is None:
            dt = torch.float32 if self.w.dtype == torch.float32 else \
                torch.int8 if self.weight_bits <= 8 else torch.int16
            self._pw = kernels.pad_weights(self.w.to(dt).T, dt)
        return self._pw

    def plastic_mask(self) -> torch.Tensor:
        """The plasticity bits in the step kernel's layout (uint8, padded like the weights)."""
        if self._pm is None:
            self._pm = kernels.pad_weights(self.stdp.plastic.T.to(torch.uint8))
        return self._pm


def torch_device(device) -> torch.device:
    """``device`` as a torch device; None: CUDA when there is one, else the CPU. A device
    this torch cannot use is named here (torch's own errors come later, deep in a run).

    Raises
    ------
    SimulationError : not a device name, or a CUDA device where torch has no CUDA
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise SimulationError(f"device: {device!r} is not a torch device (e.g. 'cpu', "
                              f"'cuda', 'cuda:1'): {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SimulationError(f"device: {device!r}, but this torch ({torch.__version__}) sees "
                              f"no CUDA device; use device='cpu' or leave it out")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SimulationError(f"device: {device!r}, but there are {torch.cuda.device_count()} "
                              f"CUDA devices")
    if dev.type not in ("cpu", "cuda"):
        raise SimulationError(f"device: {device!r}; snnkit runs on 'cpu' or 'cuda'")
    return dev


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
    ar = FloatArith()
    neurons, v_init = {}, {}
    for pop in net.neuron_populations:
        d = {k: torch.tensor(v, **f32) for k, v in pop.neuron.dynamics(pop.size).items()}
        t = {k: d[k] for k in TENSOR_PARAMS}
        neurons[pop.name] = NeuronParams(
            **t, subtract=pop.neuron.reset != "value",
            refractory=_refractory(pop.neuron.refractory, device), **_skips(t),
            **_delayed(pop.neuron.reset == "delayed", t, ar))
        v_init[pop.name] = d["v_init"]
    projs = []
    for i, pr in enumerate(net.projections):
        stdp = None
        if pr.learns(learning):
            s = pr.stdp
            stdp = STDPParams(a_plus=s.a_plus, a_minus=s.a_minus, pre_decay=s.pre_decay,
                              post_decay=s.post_decay, nearest=s.rule == "nearest",
                              soft=s.bounds == "soft", w_min=s.w_min, w_max=s.w_max,
                              shift_hard=0, shift_soft=0, plastic=_plastic(pr, device))
        projs.append(Proj(i, pr.source, pr.target, pr.delay, torch.tensor(pr.weight, **f32),
                           net.population(pr.source).encoding == "current", stdp, 0,
                           conv=pr.conv))
    return Plan(ar, neurons, v_init, projs, fixed=False)


def _skips(t: dict[str, torch.Tensor]) -> dict[str, bool]:
    """The flags that let :func:`neuron_step` skip work known to be zero."""
    return {"adaptive": bool((t["adapt_plus"] != 0).any()),
            "has_alpha": bool((t["alpha"] != 0).any()),
            "has_bias": bool((t["bias"] != 0).any())}


def _refractory(r, device) -> int | torch.Tensor:
    """One number when every neuron has the same period (0: no counter), else int32 [n]."""
    r = np.asarray(r)
    if r.ndim == 0 or np.all(r == r.flat[0]):
        return int(r.flat[0]) if r.size else 0
    return torch.tensor(r, dtype=torch.int32, device=device)


def _delayed(on: bool, t: dict[str, torch.Tensor], ar: Arith) -> dict[str, torch.Tensor]:
    """``c1`` / ``c2`` of a delayed reset (each left out where it is zero everywhere)."""
    if not on:
        return {}
    c1, c2 = delayed_reset_inputs(t["threshold"], t["beta"], t["alpha"], ar)
    return {k: c for k, c in (("c1", c1), ("c2", c2)) if bool((c != 0).any())}


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
        if pr.learns(learning):
            s = integer_stdp(net, i, q)
            stdp = STDPParams(a_plus=s.a_plus, a_minus=s.a_minus, pre_decay=s.pre_decay,
                              post_decay=s.post_decay, nearest=s.nearest, soft=s.soft,
                              w_min=s.w_min, w_max=s.w_max, shift_hard=s.shift_hard,
                              shift_soft=s.shift_soft, plastic=_plastic(pr, device))
        fan_in = src.size if pr.conv is None else pr.conv.fan_in
        projs.append(Proj(i, pr.source, pr.target, pr.delay, w, current, stdp,
                           w_abs * x_abs * fan_in, q.weight_bits, pr.conv))
    neurons, v_init = {}, {}
    ar = FixedArith(q)
    for pop in net.neuron_populations:
        ip = integer_neuron(net, pop, q)
        # a delayed reset adds two state-width values at most to the synaptic input
        bound = sum(p.bound for p in projs if p.target == pop.name) + (
            1 << q.state_bits if ip.delayed else 0)
        dt = _state_dtype(q, bound)
        t = {k: torch.tensor(getattr(ip, k), dtype=torch.int64, device=device)
             for k in TENSOR_PARAMS}
        c = _delayed(ip.delayed, t, ar)  # in int64: decay's product may not fit the state type
        t = {k: v.to(dt) for k, v in t.items()}
        neurons[pop.name] = NeuronParams(**t, subtract=ip.subtract,
                                         refractory=_refractory(ip.refractory, device),
                                         **_skips(t), **{k: v.to(dt) for k, v in c.items()})
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


def synaptic(plan: Plan, pr: Proj, src: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Input to ``pr``'s target from source activity ``src`` (``[..., source]``) through
    weights ``w`` (``pr.w``, or per-sample ``[batch, target, source]``) in the plan's
    arithmetic: the torch path's synaptic product."""
    if pr.conv is not None:  # one shared kernel: torch's convolution, exact in fixed point
        if not plan.fixed:
            k = w.to(torch.bfloat16).to(w.dtype) if plan.precision == "bf16" else w
            return conv_sum(src, k, pr.conv)
        acc = conv_sum(src, w, pr.conv, pr.bound)
        return (acc + (1 << (plan.frac - 1))) >> plan.frac if pr.current and plan.frac else acc
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


def delayed(src: torch.Tensor, delay: int, steps: int) -> torch.Tensor:
    """Spikes ``[steps, ...]`` as they arrive ``delay`` steps later (zeros before)."""
    if not delay:
        return src
    pad = torch.zeros((delay,) + src.shape[1:], dtype=src.dtype, device=src.device)
    return torch.cat([pad, src[:steps - delay]])[:steps]


def summed_input(plan: Plan, name: str, projs: list[Proj], spikes: dict, steps: int,
                 batch: int) -> torch.Tensor | None:
    """Synaptic input ``[steps, batch, n]`` of population ``name`` from ``projs`` over all
    steps (one matrix product per projection), in its state dtype; None when ``projs`` is
    empty."""
    acc = None
    for pr in projs:
        src = delayed(spikes[pr.source], pr.delay, steps)
        c = synaptic(plan, pr, src.reshape(steps * batch, -1), pr.w)
        c = c.reshape(steps, batch, -1).to(plan.v_init[name].dtype)
        acc = c if acc is None else acc + c
    return acc
