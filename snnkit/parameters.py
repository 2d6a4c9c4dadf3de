"""What a Network's parts are parameterised by: the neuron models (IF, LIF, CubaLIF), STDP and
the fixed-point format (Quantization), each a dataclass that validates itself and names the
offending field.

Time is discrete: every decay is a factor per time step (``beta = exp(-dt/tau)``).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .errors import NetworkError

# --------------------------------------------------------------------------- helpers


class ThresholdWarning(UserWarning):
    """A threshold at or below 0: every neuron at rest spikes on every step."""


def is_number(x: Any) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _check_param(where: str, name: str, value: Any, size: int | None, lo=None, hi=None):
    """Validate a scalar-or-per-neuron parameter; return it as float or float64 array."""
    label = f"{where}.{name}"
    if is_number(value):
        arr = np.asarray(float(value))
    elif isinstance(value, (str, bytes)):  # np.asarray would read "0.9" as a number
        raise NetworkError(f"{label}: expected a number or an array, got {type(value).__name__} "
                           f"{value!r:.40}")
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


def _check_steps(where: str, name: str, value: Any, size: int | None):
    """Validate a scalar-or-per-neuron whole number of steps >= 0; return int or int64 array."""
    label = f"{where}.{name}"
    if isinstance(value, (bool, np.bool_)):
        raise NetworkError(f"{label}: must be an integer >= 0, got {value!r}")
    if isinstance(value, (int, np.integer)):
        if value < 0:
            raise NetworkError(f"{label}: must be an integer >= 0, got {value!r}")
        return int(value)
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        arr = np.asarray(None)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)  # whole floats (e.g. read back from a float array)
    if arr.dtype.kind not in "iu" or arr.ndim != 1 or (size is not None and arr.shape[0] != size):
        raise NetworkError(f"{label}: must be an integer >= 0 or per-neuron integers of shape "
                           f"({size},), got {value!r:.60}")
    if np.any(arr < 0):
        raise NetworkError(f"{label}: must be >= 0, got {arr.min()}")
    return arr.astype(np.int64)


# --------------------------------------------------------------------------- neuron models

RESETS = ("subtract", "value", "delayed")


@dataclass
class NeuronModel:
    """Parameters common to every neuron model. Each may be a scalar or a per-neuron array.

    A neuron integrates ``v <- beta*v + i + bias`` and spikes when ``v >= threshold + theta``
    (``theta`` is the adaptive part of the threshold, 0 unless ``adapt_plus`` > 0). Every
    numeric parameter, ``refractory`` included, may be per neuron; ``reset`` is one per
    population. ``reset="delayed"`` is snntorch's default (``reset_delay=True``): the spike of
    step t takes the threshold off v at step t+1, after the decay (docs/fixed-point.md).
    """

    model: ClassVar[str] = ""
    threshold: Any = 1.0  # firing threshold
    reset: str = "subtract"  # "subtract": v -= threshold ; "value": v = v_reset ;
    # "delayed": snntorch's default, the threshold subtracted one step later, undecayed
    v_reset: Any = 0.0  # membrane value after a spike when reset == "value"
    refractory: Any = 0  # steps without integration after a spike (an int or int array)
    bias: Any = 0.0  # constant input added to v every step
    v_init: Any = 0.0  # membrane potential at step 0
    adapt_plus: Any = 0.0  # homeostasis: threshold increase per spike (Diehl & Cook)
    adapt_decay: Any = 1.0  # per-step decay of the threshold increase

    def validate(self, where: str, size: int) -> None:
        if not isinstance(self.reset, str) or self.reset not in RESETS:
            raise NetworkError(f"{where}.reset: must be one of {', '.join(map(repr, RESETS))}, "
                               f"one kind per population (split the population to mix "
                               f"kinds), got {self.reset!r}")
        self.refractory = _check_steps(where, "refractory", self.refractory, size)
        for f in self.param_names():
            lo, hi = self._range(f)
            setattr(self, f, _check_param(where, f, getattr(self, f), size, lo, hi))
        if np.any(np.asarray(self.threshold) <= 0):  # legal (the RTL's stress nets use it),
            # rarely meant: v >= threshold from v = 0
            warnings.warn(f"{where}.threshold: {np.min(self.threshold):g} <= 0, so a neuron at "
                          f"rest spikes on every step", ThresholdWarning, stacklevel=3)

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
            if not is_number(v) or not math.isfinite(v):
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

    def warn_outside(self, where: str, weights: np.ndarray) -> None:
        """Warn (:class:`STDPBoundsWarning`) when initial plastic ``weights`` lie outside
        [w_min, w_max]: every update clips the whole matrix, so they would change on the
        first step whether or not a spike asked for it."""
        w = np.asarray(weights, np.float64)
        out = (w < self.w_min) | (w > self.w_max)
        if out.any():
            warnings.warn(f"{where}.stdp: {int(out.sum())} of {w.size} plastic weights lie "
                          f"outside [w_min, w_max] = [{self.w_min:g}, {self.w_max:g}] (they "
                          f"span [{w.min():.3g}, {w.max():.3g}]); STDP clips them to the "
                          f"bounds on the first step. Widen w_min / w_max to keep them.",
                          STDPBoundsWarning, stacklevel=3)


class STDPBoundsWarning(UserWarning):
    """A plastic projection starts with weights that its STDP bounds would clip."""


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
