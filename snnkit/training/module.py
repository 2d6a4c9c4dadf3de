"""``snnkit.SNN``: a Network as a trainable torch module (surrogate-gradient BPTT).

The forward pass is the simulator's, step for step: the same order of populations and
projections, :func:`snnkit.neurons.neuron_step` and :func:`snnkit.plasticity.stdp_step` on a
training arithmetic (:mod:`snnkit.training.arith`), so its spikes are ``simulate``'s, in float
and in the hardware's fixed point. Two ways to run it, as in the simulator
(:mod:`snnkit.training.loops`):

* feed-forward networks without active plasticity, on the CPU: the whole network as one
  autograd node over all steps (:mod:`snnkit.training.fused`, a C kernel; every model,
  ``reset="delayed"`` and per-neuron refractory periods included), also with self
  projections (a population fed back by its own spikes, snntorch's ``RLeaky``);
* everything else (recurrent projections between populations, backward projections, STDP,
  CUDA, ``detach_reset=False``, ``SNNKIT_KERNELS=0``): torch autograd through
  ``neuron_step`` (layer by layer for feed-forward networks, else the step loop).

This module holds the parameters (trainable ones as ``nn.Parameter``), turns them into what
the forward pass uses (masked weights; in fixed point the integers, with straight-through
rounding) and exports the trained :class:`~snnkit.network.Network`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ..errors import NetworkError, SimulationError
from ..inputs import check_inputs
from ..network import Network, Quantization
from ..neurons import NeuronParams, delayed_reset_inputs
from ..plan import torch_device
from ..plasticity import STDPParams
from ..quantize import auto_quantization, integer_neuron, integer_stdp, integer_weights
from ..result import Result
from ..surrogate import surrogate as make_surrogate
from . import fused, loops
from .arith import TrainFixedArith, TrainFloatArith, floor_ste, round_ste

TRAINABLE = ("weight", "bias", "threshold", "beta", "alpha")
NEURON_PARAMS = fused.PARAMS  # alpha, beta, threshold, v_reset, bias, adapt_plus, ...
DECAYS = ("alpha", "beta", "adapt_decay")
RECORDABLE = ("v", "i", "theta")


def board_quantization(board) -> Quantization:
    """The fixed-point format of a board: a :class:`~snnkit.compiler.HardwareConfig`, a
    :class:`~snnkit.device.BoardInfo` (``.config``) or a connected Device (``.info.config``)."""
    from ..compiler import HardwareConfig

    c = getattr(getattr(board, "info", None), "config", None) or getattr(board, "config", board)
    if not isinstance(c, HardwareConfig):
        raise NetworkError(f"board: expected a HardwareConfig, BoardInfo or Device, got "
                           f"{type(board).__name__}")
    return Quantization(weight_bits=c.weight_bits, state_bits=c.state_bits,
                        frac_bits=c.frac_bits, decay_bits=c.decay_bits, trace_bits=c.trace_bits,
                        trace_frac_bits=c.trace_frac_bits, stdp_frac_bits=c.stdp_frac_bits)


def check_format(net: Network, q: Quantization) -> None:
    """Every value of ``net`` must fit the format ``q`` (raises simulate's NetworkError)."""
    for i in range(len(net.projections)):
        integer_weights(net, i, q)
        if net.projections[i].stdp is not None:
            integer_stdp(net, i, q)
    for pop in net.neuron_populations:
        integer_neuron(net, pop, q)


class _Population(nn.Module):
    """One neuron population's parameters: trainable ones as Parameters, the rest buffers."""

    def __init__(self, pop, trainable: set, per_neuron: bool, dtype, where: str):
        super().__init__()
        d = pop.neuron.dynamics(pop.size)
        self.size, self.trained = pop.size, []
        # "delayed" is the reset by subtraction plus the inputs c1 / c2 (neurons.py)
        self.subtract, self.delayed = pop.neuron.reset != "value", pop.neuron.reset == "delayed"
        r = np.asarray(pop.neuron.refractory)
        self.refractory = int(r.flat[0]) if r.ndim == 0 or np.all(r == r.flat[0]) else None
        if self.refractory is None:  # per neuron: a buffer, so that it follows the device
            self.register_buffer("refractory_n", torch.tensor(r, dtype=torch.int32))
        for k in NEURON_PARAMS:
            t = torch.tensor(d[k], dtype=dtype)
            if k in trainable and (k in ("threshold", "bias") or hasattr(pop.neuron, k)):
                if not per_neuron:
                    if bool((t != t[0]).any()):
                        raise NetworkError(f"{where}.{k}: per_neuron=False trains one value per "
                                           f"population, but it holds per-neuron values")
                    t = t[0].clone()
                self.register_parameter(k, nn.Parameter(t))
                self.trained.append(k)
            else:
                self.register_buffer(k, t)
        # the flags that let neuron_step skip work (a trained parameter may leave zero)
        self.adaptive = bool((torch.as_tensor(d["adapt_plus"]) != 0).any())
        self.has_alpha = "alpha" in self.trained or bool((torch.as_tensor(d["alpha"]) != 0).any())
        self.has_bias = "bias" in self.trained or bool((torch.as_tensor(d["bias"]) != 0).any())


class SNN(nn.Module):
    """A :class:`~snnkit.network.Network` as a trainable ``torch.nn.Module``.

    Parameters
    ----------
    net : the network (not changed; :meth:`network` returns the trained copy)
    surrogate : "fast_sigmoid", "arctan", "triangle", "straight_through" or a
        :class:`snnkit.surrogate.Surrogate`
    arithmetic : "float" (float32, as the float simulator) or "fixed" (the hardware's
        integers, docs/fixed-point.md, straight-through gradients for every rounding)
    slope : the surrogate's slope (default: the surrogate's own)
    trainable : any of "weight", "bias", "threshold", "beta", "alpha" (the last two where the
        population's model has them)
    per_neuron : train neuron parameters per neuron (True) or one per population (False; what
        today's hardware holds)
    quantization, board : arithmetic="fixed": the format (a Quantization, or a board's
        HardwareConfig / BoardInfo / Device); default ``net.quantization``, else
        :func:`~snnkit.quantize.auto_quantization`
    detach_reset : the reset does not pass gradient through the spike (default, as snntorch
        and norse); False also needs the step loop
    learning : as :func:`snnkit.simulate`: override every projection's ``stdp.enabled``
    memory : "full", or "lean": recompute chunks of ``chunk`` steps (default ~sqrt(T)) in the
        backward pass instead of keeping every step's state
    device : torch device of the parameters (default CPU; CUDA runs the step loop, untested)

    Raises
    ------
    NetworkError : a bad option, a network that does not fit the fixed-point format, or a
        configuration without gradient (nothing trainable, a parameter no population has)
    """

    def __init__(self, net: Network, surrogate="fast_sigmoid", arithmetic: str = "float", *,
                 slope: float | None = None, trainable=("weight", "bias"),
                 per_neuron: bool = True, quantization: Quantization | None = None, board=None,
                 detach_reset: bool = True, learning: bool | None = None, memory: str = "full",
                 chunk: int | None = None, device=None):
        super().__init__()
        if not isinstance(net, Network):
            raise NetworkError(f"net: expected a snnkit.Network, got {type(net).__name__}")
        if arithmetic not in ("float", "fixed"):
            raise NetworkError(f"arithmetic: must be 'float' or 'fixed', got {arithmetic!r}")
        if memory not in ("full", "lean"):
            raise NetworkError(f"memory: must be 'full' or 'lean', got {memory!r}")
        if chunk is not None and (not isinstance(chunk, int) or isinstance(chunk, bool)
                                  or chunk < 1):
            raise NetworkError(f"chunk: must be a positive number of steps, got {chunk!r}")
        trainable = {trainable} if isinstance(trainable, str) else set(trainable)
        bad = trainable - set(TRAINABLE)
        if bad:
            raise NetworkError(f"trainable: unknown parameter(s) {sorted(bad)}; choose from "
                               f"{list(TRAINABLE)}")
        if not trainable:
            raise NetworkError("trainable: nothing to train (no gradient would reach any "
                               "parameter); give e.g. trainable=('weight',)")
        if not net.neuron_populations or not net.inputs:
            raise NetworkError("net: needs an input population and a neuron population")
        self.arithmetic, self.memory, self.chunk = arithmetic, memory, chunk
        self.surrogate = make_surrogate(surrogate, slope)
        self.detach_reset, self.learning = bool(detach_reset), learning
        self.per_neuron = bool(per_neuron)
        self.trainable = tuple(k for k in TRAINABLE if k in trainable)
        self._source = copy.deepcopy(net)
        self.q = None
        if arithmetic == "fixed":
            if quantization is not None and board is not None:
                raise NetworkError("quantization, board: give one of them")
            q = quantization or (board_quantization(board) if board is not None else None)
            self.q = copy.copy(q or net.quantization or auto_quantization(net))
            self.q.validate()
            check_format(net, self.q)
            self.ar = TrainFixedArith(self.q, self.surrogate, self.detach_reset)
        else:
            if quantization is not None or board is not None:
                raise NetworkError("quantization, board: a fixed-point format applies to "
                                   "arithmetic='fixed' only")
            self.ar = TrainFloatArith(self.surrogate, self.detach_reset)
        dtype = torch.float64 if arithmetic == "fixed" else torch.float32
        # [target, source] as Network.weight, stored source-major (a transposed view): the
        # layout the kernels read and write, so no gradient is transposed or copied
        # a convolution's parameter is its kernel, shared by every position: weight(k) spreads
        # it over [target, source] through ``conv{k}`` (1 + the kernel entry of each synapse,
        # 0 where none), so every path reads the dense weights and the gradient of every
        # position adds up in the kernel
        self.weights = nn.ParameterList(
            nn.Parameter(torch.tensor(pr.weight, dtype=dtype) if pr.conv is not None else
                         torch.tensor(np.ascontiguousarray(pr.weight.T), dtype=dtype).T,
                         requires_grad="weight" in trainable)
            for pr in net.projections)
        for k, pr in enumerate(net.projections):
            self.register_buffer(f"mask{k}", None if pr.mask is None else
                                 torch.tensor(np.ascontiguousarray(pr.mask.T)).T)
            self.register_buffer(f"conv{k}", None if pr.conv is None else torch.tensor(
                pr.conv.dense(np.arange(1.0, pr.weight.size + 1).reshape(pr.weight.shape)),
                dtype=torch.int64))
        self.pops = nn.ModuleList(
            _Population(p, trainable - {"weight"}, self.per_neuron, dtype,
                        f"populations[{net.index_of(p.name)}] ({p.name}).neuron")
            for p in net.neuron_populations)
        for k in trainable - {"weight"}:
            if not any(k in m.trained for m in self.pops):
                raise NetworkError(f"trainable: no population of this network has {k!r} "
                                   f"(alpha: CubaLIF; beta: LIF, CubaLIF)")
        self._stdp = {i: self._stdp_params(net, i) for i, pr in enumerate(net.projections)
                      if pr.learns(learning)}
        order = {p.name: k for k, p in enumerate(net.populations)}
        self._layerwise = not self._stdp and all(order[p.source] < order[p.target]
                                                 for p in net.projections)
        # feed-forward but for self projections (snntorch's RLeaky): the fused kernel runs it
        self._self_recurrent = not self._stdp and not self._layerwise and all(
            order[p.source] < order[p.target] or p.source == p.target for p in net.projections)
        if device is not None:
            self.to(torch_device(device))

    # ------------------------------------------------------------------ set-up

    def _stdp_params(self, net, i) -> STDPParams:
        pr = net.projections[i]
        m = pr.connections()
        if pr.plastic_mask is not None:
            m = m & pr.plastic_mask
        plastic = torch.tensor(m)
        if self.q is None:
            s = pr.stdp
            return STDPParams(a_plus=s.a_plus, a_minus=s.a_minus, pre_decay=s.pre_decay,
                              post_decay=s.post_decay, nearest=s.rule == "nearest",
                              soft=s.bounds == "soft", w_min=s.w_min, w_max=s.w_max,
                              shift_hard=0, shift_soft=0, plastic=plastic)
        s = integer_stdp(net, i, self.q)
        return STDPParams(a_plus=s.a_plus, a_minus=s.a_minus, pre_decay=s.pre_decay,
                          post_decay=s.post_decay, nearest=s.nearest, soft=s.soft,
                          w_min=s.w_min, w_max=s.w_max, shift_hard=s.shift_hard,
                          shift_soft=s.shift_soft, plastic=plastic)

    @property
    def device(self) -> torch.device:
        return self.pops[0].threshold.device

    @property
    def dtype(self) -> torch.dtype:
        return self.pops[0].threshold.dtype

    # ------------------------------------------------------------------ parameters in use

    def weight(self, k: int) -> torch.Tensor:
        """Projection ``k``'s weights ``[target, source]`` as the forward pass uses them:
        masked (a convolution's kernel at every position), and in fixed point the integers
        (rounded, saturated to ``weight_bits``)."""
        w = self._stored_weight(k)
        idx = getattr(self, f"conv{k}")
        if idx is not None:
            return torch.cat([w.new_zeros(1), w.reshape(-1)])[idx]
        mask = getattr(self, f"mask{k}")
        return w if mask is None else w * mask

    def _stored_weight(self, k: int) -> torch.Tensor:
        """Projection ``k``'s parameter (a convolution's kernel) as used: fixed point rounds
        and saturates it to ``weight_bits``."""
        w = self.weights[k]
        if self.q is not None:
            lim = 1 << (self.q.weight_bits - 1)
            w = round_ste(w * float(1 << self.q.frac_bits)).clamp(-lim, lim - 1)
        return w

    def neuron_params(self, k: int) -> tuple[NeuronParams, torch.Tensor]:
        """Population ``k``'s :class:`~snnkit.neurons.NeuronParams` and ``v_init`` as the
        forward pass uses them (fixed point: integers, saturated to their widths)."""
        m = self.pops[k]
        v = {}
        for name in NEURON_PARAMS:
            t = getattr(m, name).expand(m.size)
            if name in DECAYS and name in m.trained:
                t = t.clamp(0, 1)
            if self.q is not None:
                if name in DECAYS:
                    t = round_ste(t * float(1 << self.q.decay_bits))
                else:
                    lim = 1 << (self.q.state_bits - 1)
                    t = round_ste(t * float(1 << self.q.frac_bits)).clamp(-lim, lim - 1)
            v[name] = t
        c = {}
        if m.delayed:  # from the (trained) threshold and decays, as the simulators compute them
            c["c1"], c["c2"] = delayed_reset_inputs(v["threshold"], v["beta"], v["alpha"],
                                                    self.ar)
        p = NeuronParams(alpha=v["alpha"], beta=v["beta"], threshold=v["threshold"],
                         v_reset=v["v_reset"], bias=v["bias"], adapt_plus=v["adapt_plus"],
                         adapt_decay=v["adapt_decay"], subtract=m.subtract,
                         refractory=m.refractory_n if m.refractory is None else m.refractory,
                         adaptive=m.adaptive, has_alpha=m.has_alpha, has_bias=m.has_bias, **c)
        return p, v["v_init"]

    # ------------------------------------------------------------------ forward

    def forward(self, x, record=()) -> Result:
        """Run the network on ``x`` (``[steps, batch, inputs]`` or a dict per input
        population, as :func:`snnkit.simulate`; the inputs are data: no gradient flows into
        them). Returns a :class:`~snnkit.result.Result` whose neuron populations' spikes
        (0.0 / 1.0 in the arithmetic's dtype) and recorded states (``record``: any of "v",
        "i", "theta"; fixed point in integer LSBs) carry gradients.

        Raises
        ------
        SimulationError : inputs of the wrong shape or values, unknown record names
        """
        record = (record,) if isinstance(record, str) else tuple(record)
        bad = [r for r in record if r not in RECORDABLE]
        if bad:
            raise SimulationError(f"record: unknown or untrainable state(s) {bad}; choose from "
                                  f"{list(RECORDABLE)}")
        net = self._source
        arrays, steps, batch = check_inputs(net, x, None)
        xs = {p.name: self._encode_input(arrays[p.name].to(self.device), p)
              for p in net.inputs}
        run = loops.run_layerwise if self._layerwise else loops.run_self_recurrent \
            if self._self_recurrent else loops.run_stepwise
        spikes, states = run(self, xs, steps, batch, set(record))
        spikes = {p.name: spikes[p.name] for p in net.populations if p.encoding != "current"}
        return Result(self.arithmetic, steps, batch, spikes, states,
                      lsb=None if self.q is None else 2.0 ** -self.q.frac_bits)

    def _encode_input(self, x: torch.Tensor, pop) -> torch.Tensor:
        if pop.encoding == "spikes":
            return x
        if self.q is None:
            return x.to(torch.float32)
        f = self.q.frac_bits
        xq = x.to(torch.float64) * float(1 << f)
        xq = torch.trunc(xq + torch.copysign(torch.full_like(xq, 0.5), xq))
        lim = 1 << (self.q.state_bits - 1)
        if bool((xq < -lim).any()) or bool((xq > lim - 1).any()):
            raise SimulationError(f"inputs[{pop.name!r}]: a current value does not fit the "
                                  f"{self.q.state_bits}-bit state with {f} fractional bits")
        return xq

    def _current(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Synaptic input from current values ``x [..., S]`` (fixed: rounded back to frac)."""
        acc = x.to(w.dtype) @ w.T.contiguous()
        if self.q is not None and self.q.frac_bits:
            f = self.q.frac_bits
            acc = floor_ste((acc + float(1 << (f - 1))) * 2.0 ** -f)
        return acc

    # ------------------------------------------------------------------ export

    @torch.no_grad()
    def network(self) -> Network:
        """The trained network: a new :class:`~snnkit.network.Network` (the one given is not
        changed). Fixed point: exactly the integers the forward pass used, with the format
        attached (so ``simulate(..., backend="fixed")`` and the board compute what training
        computed). Float: the float values; the original format is kept if every value still
        fits it, else none is attached (the fixed backend then chooses one)."""
        net = copy.deepcopy(self._source)
        for k, pr in enumerate(net.projections):
            conv = pr.conv is not None
            w = (self._stored_weight(k) if conv else self.weight(k))
            w = w.detach().cpu().to(torch.float64).numpy()
            if self.q is not None:
                w = w * 2.0 ** -self.q.frac_bits
            pr.weight = w if conv else np.where(pr.connections(), w, 0.0)
        for k, pop in enumerate(net.neuron_populations):
            m = self.pops[k]
            p, _ = self.neuron_params(k)
            for name in m.trained:
                t = getattr(p, name).detach().cpu().to(torch.float64).numpy()
                if self.q is not None:
                    t = t * 2.0 ** -(self.q.decay_bits if name in DECAYS else self.q.frac_bits)
                value = float(t[0]) if getattr(m, name).dim() == 0 else t
                setattr(pop.neuron, name, value)
            pop.neuron.validate(f"populations[{net.index_of(pop.name)}] ({pop.name}).neuron",
                                pop.size)
        if self.q is not None:
            net.quantization = copy.copy(self.q)
        elif net.quantization is not None:
            try:
                check_format(net, net.quantization)
            except NetworkError:
                net.quantization = None
        return net

    def extra_repr(self) -> str:
        q = "" if self.q is None else (f", {self.q.weight_bits}-bit weights, "
                                       f"{self.q.frac_bits} fractional bits")
        return (f"{self._source!r}, arithmetic={self.arithmetic!r}{q}, surrogate="
                f"{self.surrogate.name}(slope={self.surrogate.slope:g}), trainable="
                f"{list(self.trainable)}, memory={self.memory!r}")
