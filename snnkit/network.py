"""The network description shared by every simulator, the converter, NIR and the compiler.

A :class:`Network` is an ordered list of populations (inputs and neurons) and a list of
projections between them. The order matters: populations are updated in that order within a
time step, and the *global neuron index* used by the hardware is the population's offset (the
sum of the sizes of all populations before it, inputs included) plus the neuron's index inside
the population.

Time is discrete: every decay is a factor per time step (``beta = exp(-dt/tau)``), every
delay is a whole number of steps. Weights are shaped ``[target, source]`` as in
``torch.nn.Linear``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .errors import NetworkError

# --------------------------------------------------------------------------- helpers


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _check_param(where: str, name: str, value: Any, size: int | None, lo=None, hi=None):
    """Validate a scalar-or-per-neuron parameter; return it as float or float64 array."""
    label = f"{where}.{name}"
    if _is_number(value):
        arr = np.asarray(float(value))
    else:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise NetworkError(f"{label}: expected a number or an array, "
                               f"got {type(value).__name__}")
        if arr.ndim != 1 or (size is not None and arr.shape[0] != size):
            raise NetworkError(
                f"{label}: per-neuron values must have shape ({size},), got {tuple(arr.shape)}"
            )
    if not np.all(np.isfinite(arr)):
        raise NetworkError(f"{label}: contains NaN or inf")
    if lo is not None and np.any(arr < lo):
        raise NetworkError(f"{label}: must be >= {lo}, got {arr.min():g}")
    if hi is not None and np.any(arr > hi):
        raise NetworkError(f"{label}: must be <= {hi}, got {arr.max():g}")
    return float(arr) if arr.ndim == 0 else arr


# --------------------------------------------------------------------------- neuron models


@dataclass
class NeuronModel:
    """Parameters common to every neuron model. Each may be a scalar or a per-neuron array.

    A neuron integrates ``v <- beta*v + i + bias`` and spikes when ``v >= threshold + theta``
    (``theta`` is the adaptive part of the threshold, 0 unless ``adapt_plus`` > 0).
    """

    model: ClassVar[str] = ""
    threshold: Any = 1.0  # firing threshold
    reset: str = "subtract"  # "subtract": v -= threshold ; "value": v = v_reset
    v_reset: Any = 0.0  # membrane value after a spike when reset == "value"
    refractory: int = 0  # steps without integration after a spike
    bias: Any = 0.0  # constant input added to v every step
    v_init: Any = 0.0  # membrane potential at step 0
    adapt_plus: Any = 0.0  # homeostasis: threshold increase per spike (Diehl & Cook)
    adapt_decay: Any = 1.0  # per-step decay of the threshold increase

    def validate(self, where: str, size: int) -> None:
        if self.reset not in ("subtract", "value"):
            raise NetworkError(f"{where}.reset: must be 'subtract' or 'value', got {self.reset!r}")
        if not isinstance(self.refractory, (int, np.integer)) or self.refractory < 0:
            raise NetworkError(f"{where}.refractory: must be an integer >= 0, "
                               f"got {self.refractory!r}")
        self.refractory = int(self.refractory)
        for f in self.param_names():
            lo, hi = self._range(f)
            setattr(self, f, _check_param(where, f, getattr(self, f), size, lo, hi))

    @classmethod
    def param_names(cls) -> list[str]:
        """Names of the numeric (scalar-or-array) parameters."""
        return [f.name for f in dataclasses.fields(cls) if f.name not in ("reset", "refractory")]

    @staticmethod
    def _range(name: str):
        return {
            "beta": (0.0, 1.0),
            "alpha": (0.0, 1.0),
            "adapt_decay": (0.0, 1.0),
            "adapt_plus": (0.0, None),
        }.get(name, (None, None))

    # per-step dynamics in the general form used by the simulators
    def dynamics(self, size: int) -> dict[str, np.ndarray]:
        """All parameters broadcast to ``[size]`` in the general CUBA form (alpha, beta, ...)."""
        out = {f: np.broadcast_to(np.asarray(getattr(self, f), np.float64), (size,)).copy()
               for f in self.param_names()}
        out.setdefault("alpha", np.zeros(size))
        out.setdefault("beta", np.ones(size))
        return out


@dataclass
class IF(NeuronModel):
    """Integrate-and-fire: no leak (beta = 1), no synaptic state."""

    model: ClassVar[str] = "if"


@dataclass
class LIF(NeuronModel):
    """Leaky integrate-and-fire with instantaneous (current-free) synapses."""

    model: ClassVar[str] = "lif"
    beta: Any = 0.9  # membrane decay per step, exp(-dt/tau_mem)


@dataclass
class CubaLIF(NeuronModel):
    """LIF with a current-based, exponentially decaying synapse: ``i <- alpha*i + input``."""

    model: ClassVar[str] = "cuba_lif"
    alpha: Any = 0.8  # synaptic current decay per step, exp(-dt/tau_syn)
    beta: Any = 0.9  # membrane decay per step, exp(-dt/tau_mem)


NEURON_MODELS: dict[str, type[NeuronModel]] = {m.model: m for m in (IF, LIF, CubaLIF)}


# --------------------------------------------------------------------------- plasticity


@dataclass
class STDP:
    """Trace-based pair STDP on one projection (see docs/fixed-point.md for the exact order).

    On a postsynaptic spike ``w += a_plus * x_pre``; on a presynaptic arrival
    ``w -= a_minus * x_post``; soft bounds scale these by ``(w_max - w)`` and ``(w - w_min)``.
    """

    a_plus: float = 0.01  # potentiation amplitude (weight units per unit trace)
    a_minus: float = 0.012  # depression amplitude
    pre_decay: float = 0.9  # presynaptic trace decay per step, exp(-dt/tau_pre)
    post_decay: float = 0.9  # postsynaptic trace decay per step, exp(-dt/tau_post)
    rule: str = "all_pairs"  # "all_pairs": x += 1 per spike ; "nearest": x = 1 per spike
    bounds: str = "hard"  # "hard": clip to [w_min, w_max] ; "soft": multiplicative
    w_min: float = 0.0
    w_max: float = 1.0
    enabled: bool = True  # may be overridden per run: simulate(..., learning=False)

    def validate(self, where: str) -> None:
        if self.rule not in ("all_pairs", "nearest"):
            raise NetworkError(f"{where}.rule: must be 'all_pairs' or 'nearest', got {self.rule!r}")
        if self.bounds not in ("hard", "soft"):
            raise NetworkError(f"{where}.bounds: must be 'hard' or 'soft', got {self.bounds!r}")
        for name in ("a_plus", "a_minus", "pre_decay", "post_decay", "w_min", "w_max"):
            v = getattr(self, name)
            if not _is_number(v) or not math.isfinite(v):
                raise NetworkError(f"{where}.{name}: must be a finite number, got {v!r}")
            setattr(self, name, float(v))
        for name in ("a_plus", "a_minus"):
            if getattr(self, name) < 0:
                raise NetworkError(f"{where}.{name}: must be >= 0, got {getattr(self, name)}")
        for name in ("pre_decay", "post_decay"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise NetworkError(f"{where}.{name}: must be in [0, 1], got {getattr(self, name)}")
        if self.w_min > self.w_max:
            raise NetworkError(f"{where}.w_min: {self.w_min} is greater than w_max {self.w_max}")
        self.enabled = bool(self.enabled)


# --------------------------------------------------------------------------- quantisation


@dataclass
class Quantization:
    """The fixed-point format (docs/fixed-point.md). One LSB = 2**-frac_bits for weights,
    currents, membrane potentials, thresholds and biases alike, so a weight adds to a current
    without shifting."""

    weight_bits: int = 8  # signed weights: [-2**(w-1), 2**(w-1)-1] LSB
    state_bits: int = 16  # signed v, i, threshold adaptation; saturating
    frac_bits: int = 6  # fractional bits of weights and states
    decay_bits: int = 12  # decays as unsigned round(d * 2**decay_bits), 2**decay_bits == 1.0
    trace_bits: int = 8  # unsigned STDP traces, saturating
    trace_frac_bits: int = 6  # 1.0 in a trace == 2**trace_frac_bits
    stdp_frac_bits: int = 8  # extra fractional bits of a_plus / a_minus

    LIMITS: ClassVar[dict[str, tuple[int, int]]] = {
        "weight_bits": (2, 16), "state_bits": (4, 32), "frac_bits": (0, 24),
        "decay_bits": (1, 16), "trace_bits": (2, 16), "trace_frac_bits": (0, 15),
        "stdp_frac_bits": (0, 16),
    }

    def validate(self, where: str = "quantization") -> None:
        for name, (lo, hi) in self.LIMITS.items():
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not lo <= v <= hi:
                raise NetworkError(f"{where}.{name}: must be an integer in [{lo}, {hi}], got {v!r}")
            setattr(self, name, int(v))
        if self.weight_bits > self.state_bits:
            raise NetworkError(
                f"{where}.weight_bits: {self.weight_bits} exceeds state_bits {self.state_bits}")
        if self.trace_frac_bits >= self.trace_bits:
            raise NetworkError(f"{where}.trace_frac_bits: must be < trace_bits ({self.trace_bits})")


# --------------------------------------------------------------------------- graph


@dataclass
class Population:
    """A named group of neurons, or of inputs when ``neuron`` is None.

    Inputs with ``encoding="current"`` take real values (analog input, e.g. a converted ANN's
    first layer) instead of spikes; their projections deliver ``weight @ value``.
    """

    name: str
    size: int
    neuron: NeuronModel | None = None  # None: an input population
    encoding: str = "spikes"  # inputs only: "spikes" or "current"

    @property
    def is_input(self) -> bool:
        return self.neuron is None


@dataclass
class Projection:
    """Weights from every neuron of ``source`` to every neuron of ``target``."""

    source: str
    target: str
    weight: np.ndarray  # float64 [target.size, source.size]
    mask: np.ndarray | None = None  # bool [target, source]; None = all-to-all
    delay: int = 0  # steps; 0 only forward in population order
    stdp: STDP | None = None
    plastic_mask: np.ndarray | None = None  # bool [target, source]; None = every connection

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"

    def connections(self) -> np.ndarray:
        """Boolean [target, source]: which synapses exist."""
        return np.ones(self.weight.shape, bool) if self.mask is None else self.mask

    @property
    def n_synapses(self) -> int:
        return int(self.connections().sum())


_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


class Network:
    """A spiking network: ordered populations, projections, optional quantisation.

    Example::

        net = Network(dt=1e-3)
        net.add_input("in", 64)
        net.add_population("hid", 100, LIF(beta=0.9))
        net.connect("in", "hid", w)  # w: [100, 64]
    """

    def __init__(self, dt: float = 1e-3, quantization: Quantization | None = None, name: str = ""):
        if not _is_number(dt) or not math.isfinite(dt) or dt <= 0:
            raise NetworkError(f"dt: must be a positive number of seconds, got {dt!r}")
        self.dt = float(dt)
        self.name = name
        self.populations: list[Population] = []
        self.projections: list[Projection] = []
        self.quantization = quantization
        if quantization is not None:
            quantization.validate()

    # ---- building

    def _check_new_name(self, name: str, where: str) -> None:
        if not isinstance(name, str) or not name or not set(name) <= _NAME_OK:
            raise NetworkError(f"{where}.name: must be a non-empty string of letters, digits, "
                               f"'_', '.', '-'; got {name!r}")
        if any(p.name == name for p in self.populations):
            raise NetworkError(f"{where}.name: a population named {name!r} already exists")

    @staticmethod
    def _check_size(size: Any, where: str) -> int:
        if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size <= 0:
            raise NetworkError(f"{where}.size: must be a positive integer, got {size!r}")
        return int(size)

    def add_input(self, name: str, size: int, encoding: str = "spikes") -> Population:
        """Append an input population (a spike or current source)."""
        where = f"populations[{len(self.populations)}]"
        self._check_new_name(name, where)
        size = self._check_size(size, f"{where} ({name})")
        if encoding not in ("spikes", "current"):
            raise NetworkError(f"{where} ({name}).encoding: must be 'spikes' or 'current', "
                               f"got {encoding!r}")
        pop = Population(name, size, None, encoding)
        self.populations.append(pop)
        return pop

    def add_population(self, name: str, size: int, neuron: NeuronModel | None = None) -> Population:
        """Append a population of ``size`` neurons of the given model (default ``LIF()``)."""
        where = f"populations[{len(self.populations)}]"
        self._check_new_name(name, where)
        size = self._check_size(size, f"{where} ({name})")
        neuron = LIF() if neuron is None else neuron
        if not isinstance(neuron, NeuronModel):
            raise NetworkError(f"{where} ({name}).neuron: expected a neuron model such as LIF(), "
                               f"got {type(neuron).__name__}")
        neuron.validate(f"{where} ({name}).neuron", size)
        pop = Population(name, size, neuron)
        self.populations.append(pop)
        return pop

    def connect(self, source: str, target: str, weight, *, mask=None, delay: int = 0,
                stdp: STDP | None = None, plastic_mask=None) -> Projection:
        """Add a projection; ``weight`` is a scalar (all equal) or an array ``[target, source]``."""
        where = f"projections[{len(self.projections)}] ({source}->{target})"
        src, tgt = self._pop(source, f"{where}.source"), self._pop(target, f"{where}.target")
        if tgt.is_input:
            raise NetworkError(f"{where}.target: {target!r} is an input population and cannot "
                               f"receive projections")
        shape = (tgt.size, src.size)
        w = np.full(shape, float(weight)) if _is_number(weight) else self._array(
            weight, np.float64, shape, f"{where}.weight")
        if not np.all(np.isfinite(w)):
            raise NetworkError(f"{where}.weight: contains NaN or inf")
        m = None if mask is None else self._array(mask, bool, shape, f"{where}.mask")
        if m is not None:
            w = np.where(m, w, 0.0)
        pm = None if plastic_mask is None else self._array(plastic_mask, bool, shape,
                                                           f"{where}.plastic_mask")
        if not isinstance(delay, (int, np.integer)) or isinstance(delay, bool) or delay < 0:
            raise NetworkError(f"{where}.delay: must be an integer number of steps >= 0, "
                               f"got {delay!r}")
        if delay == 0 and self.index_of(source) >= self.index_of(target):
            raise NetworkError(
                f"{where}.delay: a projection from {source!r} to itself or to an earlier "
                f"population needs delay >= 1 (spikes of step t reach it at step t + delay)")
        if stdp is not None:
            if not isinstance(stdp, STDP):
                raise NetworkError(f"{where}.stdp: expected snnkit.STDP, got {type(stdp).__name__}")
            if src.is_input and src.encoding == "current":
                raise NetworkError(f"{where}.stdp: plasticity needs spiking sources, but "
                                   f"{source!r} is a current input")
            stdp.validate(f"{where}.stdp")
        proj = Projection(source, target, w, m, int(delay), stdp, pm)
        self.projections.append(proj)
        return proj

    @staticmethod
    def _array(value, dtype, shape, label) -> np.ndarray:
        try:
            arr = np.array(value, dtype=dtype)
        except (TypeError, ValueError) as e:
            raise NetworkError(f"{label}: cannot be read as {np.dtype(dtype).name} array ({e})")
        if arr.shape != shape:
            raise NetworkError(f"{label}: shape {tuple(arr.shape)} does not match "
                               f"[target, source] = {shape}")
        return arr

    # ---- queries

    def _pop(self, name: str, label: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        known = ", ".join(repr(p.name) for p in self.populations) or "none"
        raise NetworkError(f"{label}: no population named {name!r} (known: {known})")

    def population(self, name: str) -> Population:
        return self._pop(name, "population")

    def index_of(self, name: str) -> int:
        """Position of a population in the update order."""
        return self.populations.index(self._pop(name, "population"))

    def offset(self, name: str) -> int:
        """Global index of the population's first neuron (inputs count too)."""
        off = 0
        for p in self.populations:
            if p.name == name:
                return off
            off += p.size
        raise NetworkError(f"population: no population named {name!r}")

    @property
    def inputs(self) -> list[Population]:
        return [p for p in self.populations if p.is_input]

    @property
    def neuron_populations(self) -> list[Population]:
        return [p for p in self.populations if not p.is_input]

    @property
    def n_inputs(self) -> int:
        return sum(p.size for p in self.inputs)

    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.neuron_populations)

    @property
    def n_synapses(self) -> int:
        return sum(p.n_synapses for p in self.projections)

    def incoming(self, name: str) -> list[Projection]:
        return [p for p in self.projections if p.target == name]

    @property
    def max_delay(self) -> int:
        return max((p.delay for p in self.projections), default=0)

    def summary(self) -> str:
        """A human-readable table of the network (what ``snnkit info`` prints)."""
        from .summary import summarize

        return summarize(self)

    # ---- files

    def save(self, path) -> None:
        """Write the network to ``path`` (format: docs/network-format.md); atomic."""
        from .fileformat import save

        save(self, path)

    def __repr__(self) -> str:
        pops = ", ".join(f"{p.name}[{p.size}]" for p in self.populations)
        return f"Network({pops}; {len(self.projections)} projections, {self.n_synapses} synapses)"
