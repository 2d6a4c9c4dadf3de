"""Float network -> the integers the hardware holds (docs/fixed-point.md, "Encoding").

:func:`quantize` picks a format that fits the network (or checks a given one), and returns a
network whose every value is exactly representable, plus a report of each parameter's error.
:func:`integer_params` gives the integer encodings that the fixed-point simulator and the
compiler both use, so they can never disagree.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from .errors import NetworkError
from .network import Network, Quantization
from .parameters import ThresholdWarning

STATE_PARAMS = ("threshold", "v_reset", "bias", "v_init", "adapt_plus")
DECAY_PARAMS = ("alpha", "beta", "adapt_decay")


def round_half_away(x):
    """Round to nearest, ties away from zero (the rule for every encoding)."""
    y = np.array(x, np.float64)  # a copy: rounded in place below
    return _round_in_place(y)


def _round_in_place(y: np.ndarray) -> np.ndarray:
    # trunc(y + copysign(0.5, y)) == sign(y) * floor(|y| + 0.5), in two passes instead of five
    y += np.copysign(0.5, y)
    return np.trunc(y, out=y)


def encode(x, frac: int) -> np.ndarray:
    """``x`` in LSBs of ``frac`` fractional bits (runs on every weight per simulation)."""
    y = np.multiply(np.asarray(x), float(1 << frac), dtype=np.float64)
    return _round_in_place(np.atleast_1d(y)).astype(np.int64).reshape(np.shape(y))


def _check_range(q: np.ndarray, lo: int, hi: int, label: str, what: str, x) -> None:
    if q.size and (q.min() < lo or q.max() > hi):
        xv = np.asarray(x, np.float64)
        k = int(np.argmax(np.abs(q)))
        raise NetworkError(
            f"{label}: value {np.broadcast_to(xv, q.shape).flat[k]:.6g} ({q.flat[k]} LSB) "
            f"does not fit {what} (range {lo}..{hi} LSB); use fewer frac_bits or more bits")


@dataclass
class IntNeuron:
    """Integer parameters of one population, arrays broadcast to [size]."""

    alpha: np.ndarray
    beta: np.ndarray
    threshold: np.ndarray
    v_reset: np.ndarray
    bias: np.ndarray
    v_init: np.ndarray
    adapt_plus: np.ndarray
    adapt_decay: np.ndarray
    subtract: bool  # reset by subtraction ("subtract" and "delayed")
    refractory: int | np.ndarray  # one for all, or per neuron
    delayed: bool = False  # reset="delayed": plus the inputs of neurons.delayed_reset_inputs


@dataclass
class IntSTDP:
    a_plus: int
    a_minus: int
    pre_decay: int
    post_decay: int
    w_min: int
    w_max: int
    nearest: bool
    soft: bool
    shift_hard: int
    shift_soft: int


def integer_neuron(net: Network, pop, q: Quantization) -> IntNeuron:
    d = pop.neuron.dynamics(pop.size)
    lo, hi = -(1 << (q.state_bits - 1)), (1 << (q.state_bits - 1)) - 1
    out = {}
    where = f"populations[{net.index_of(pop.name)}] ({pop.name}).neuron"
    for k in STATE_PARAMS:
        out[k] = encode(d[k], q.frac_bits)
        _check_range(out[k], lo, hi, f"{where}.{k}", f"{q.state_bits}-bit state", d[k])
    gone = (out["threshold"] <= 0) & (d["threshold"] > 0)  # rounded to nothing: at rest, spikes
    if gone.any():  # (a converted network's always-on bias neurons, threshold = bias = 1 LSB,
        # requantised to fewer bits, stay always on: a warning, not an error)
        k = int(np.argmax(gone))
        warnings.warn(f"{where}.threshold: {d['threshold'][k]:.6g} rounds to "
                      f"{out['threshold'][k]} LSB at {q.frac_bits} fractional bits, so a neuron "
                      f"at rest spikes on every step; more frac_bits keep it above 0",
                      ThresholdWarning, stacklevel=2)
    for k in DECAY_PARAMS:
        out[k] = encode(d[k], q.decay_bits)
    return IntNeuron(**out, subtract=pop.neuron.reset != "value",
                     refractory=pop.neuron.refractory, delayed=pop.neuron.reset == "delayed")


def delayed_reset_weights(ip: IntNeuron, q: Quantization) -> tuple[np.ndarray, np.ndarray]:
    """``(c1, c2)`` of :func:`snnkit.neurons.delayed_reset_inputs` in integers (LSB), the
    weights of the self-synapses the core runs a delayed reset with (:mod:`snnkit.lowering`)."""
    import torch

    from .arith import FixedArith
    from .neurons import delayed_reset_inputs

    c1, c2 = delayed_reset_inputs(*(torch.from_numpy(np.asarray(getattr(ip, k), np.int64))
                                    for k in ("threshold", "beta", "alpha")), FixedArith(q))
    return c1.numpy(), c2.numpy()


def integer_weights(net: Network, i: int, q: Quantization) -> np.ndarray:
    pr = net.projections[i]
    w = encode(pr.weight, q.frac_bits)
    _check_range(w, -(1 << (q.weight_bits - 1)), (1 << (q.weight_bits - 1)) - 1,
                 f"projections[{i}] ({pr.name}).weight", f"{q.weight_bits}-bit weights",
                 pr.weight)
    return w


def integer_stdp(net: Network, i: int, q: Quantization) -> IntSTDP:
    s = net.projections[i].stdp
    where = f"projections[{i}] ({net.projections[i].name}).stdp"
    w_lo, w_hi = -(1 << (q.weight_bits - 1)), (1 << (q.weight_bits - 1)) - 1
    bounds = {}
    for k in ("w_min", "w_max"):
        v = int(encode(getattr(s, k), q.frac_bits))
        _check_range(np.array([v]), w_lo, w_hi, f"{where}.{k}", f"{q.weight_bits}-bit weights",
                     getattr(s, k))
        bounds[k] = v
    a = {k: int(encode(getattr(s, k), q.frac_bits + q.stdp_frac_bits))
         for k in ("a_plus", "a_minus")}
    return IntSTDP(**a, pre_decay=int(encode(s.pre_decay, q.decay_bits)),
                   post_decay=int(encode(s.post_decay, q.decay_bits)), **bounds,
                   nearest=s.rule == "nearest", soft=s.bounds == "soft",
                   shift_hard=q.stdp_frac_bits + q.trace_frac_bits,
                   shift_soft=q.stdp_frac_bits + q.trace_frac_bits + q.frac_bits)


def auto_quantization(net: Network, weight_bits: int = 8, state_bits: int = 16,
                      decay_bits: int = 12) -> Quantization:
    """The format with the most fractional bits in which every weight and state value fits,
    and the self-synapses a delayed reset becomes on the core (:mod:`snnkit.lowering`)."""
    wmax = max((float(np.abs(p.weight).max()) for p in net.projections if p.weight.size),
               default=0.0)
    for p in net.projections:
        if p.stdp is not None:
            wmax = max(wmax, abs(p.stdp.w_min), abs(p.stdp.w_max))
    smax = 0.0
    for pop in net.neuron_populations:
        d = pop.neuron.dynamics(pop.size)
        smax = max([smax] + [float(np.abs(d[k]).max()) for k in STATE_PARAMS])
    delayed = [p for p in net.neuron_populations if p.neuron.reset == "delayed"]
    for f in range(24, -1, -1):
        q = Quantization(weight_bits=weight_bits, state_bits=state_bits, frac_bits=f,
                         decay_bits=decay_bits)
        if (round_half_away(wmax * (1 << f)) <= (1 << (weight_bits - 1)) - 1
                and round_half_away(smax * (1 << f)) <= (1 << (state_bits - 1)) - 1
                and all(lowering_fits(net, p, q) for p in delayed)):
            return q
    raise NetworkError("quantization: values too large for the chosen widths")


def lowering_fits(net: Network, pop, q: Quantization) -> bool:
    """The delayed reset's self-synapse weights fit the weights' width (so the network
    compiles for the core as quantised)."""
    lo, hi = -(1 << (q.weight_bits - 1)), (1 << (q.weight_bits - 1)) - 1
    try:
        cs = delayed_reset_weights(integer_neuron(net, pop, q), q)
    except NetworkError:  # a state parameter does not fit: checked by the caller
        return False
    return all(c.size == 0 or (lo <= c.min() and c.max() <= hi) for c in cs)


@dataclass
class QuantizationReport:
    """Per-parameter quantisation error of :func:`quantize`."""

    quantization: Quantization
    rows: list[tuple[str, float, float]]  # (parameter, max abs error, max abs value)

    def __str__(self) -> str:
        q = self.quantization
        head = (f"fixed point: {q.weight_bits}-bit weights, {q.state_bits}-bit states, "
                f"{q.frac_bits} fractional bits (LSB {2.0 ** -q.frac_bits:g}), "
                f"decays with {q.decay_bits} bits")
        lines = [head, f"  {'parameter':<48} {'max |error|':>12} {'max |value|':>12}"]
        lines += [f"  {n:<48} {e:>12.4g} {m:>12.4g}" for n, e, m in self.rows]
        return "\n".join(lines)

    @property
    def max_weight_error(self) -> float:
        return max((e for n, e, _ in self.rows if n.endswith(".weight")), default=0.0)


def quantize(net: Network, quantization: Quantization | None = None):
    """Return ``(fixed_net, report)``: a copy whose values are exactly the fixed-point ones.

    Parameters
    ----------
    net : the float network
    quantization : the format; default: ``net.quantization``, else :func:`auto_quantization`

    Raises
    ------
    NetworkError : a value does not fit the format (the message names it)
    """
    q = quantization or net.quantization or auto_quantization(net)
    q = dataclasses.replace(q)
    q.validate()
    out = copy.deepcopy(net)
    out.quantization = q
    rows = []
    sf, df = 2.0 ** -q.frac_bits, 2.0 ** -q.decay_bits

    def record(name, old, new):
        old, new = np.asarray(old, np.float64), np.asarray(new, np.float64)
        rows.append((name, float(np.abs(old - new).max(initial=0)),
                     float(np.abs(old).max(initial=0))))

    for i, pop in enumerate(out.populations):
        if pop.is_input:
            continue
        ip = integer_neuron(net, net.populations[i], q)
        n = pop.neuron
        for k in STATE_PARAMS + DECAY_PARAMS:
            if not hasattr(n, k):
                continue
            scale = df if k in DECAY_PARAMS else sf
            old = getattr(n, k)
            new = getattr(ip, k) * scale
            new = float(new[0]) if np.ndim(old) == 0 else new
            record(f"{pop.name}.{k}", old, new)
            setattr(n, k, new)
    for i, pr in enumerate(out.projections):
        new = integer_weights(net, i, q) * sf
        record(f"{pr.name}.weight", pr.weight, new)
        pr.weight = new
        if pr.stdp is not None:
            s = integer_stdp(net, i, q)
            af = 2.0 ** -(q.frac_bits + q.stdp_frac_bits)
            for k, scale in (("a_plus", af), ("a_minus", af), ("pre_decay", df),
                             ("post_decay", df), ("w_min", sf), ("w_max", sf)):
                old, new = getattr(pr.stdp, k), getattr(s, k) * scale
                record(f"{pr.name}.stdp.{k}", old, new)
                setattr(pr.stdp, k, new)
    return out, QuantizationReport(q, rows)


