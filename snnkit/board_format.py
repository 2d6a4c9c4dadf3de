"""A network in a board's fixed-point format: what ``Device.load``, ``snnkit deploy``,
``snnkit run``, ``snnkit emulate --net`` and ``snnkit build`` quantise to.

A board is built for one format (its IDENTIFY says it: the widths and fractional bits of
docs/hardware.md, registers WIDTHS and FRACS). :func:`board_quantization` is the format a
network takes on it: the board's widths, and the fractional bits the core depends on only
with soft-bound STDP (:func:`snnkit.compiler.format_fields`); otherwise the network's own when
its values fit the board's widths with them (so a network already in a fitting format keeps
its integers exactly), else the most that fit. :func:`to_board` quantises the network to it
and returns the per-parameter report; a network that cannot fit is refused naming what, by
how much and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .compiler import CompileReport, HardwareConfig, build_images, check_kinds
from .errors import NetworkError
from .network import Network, Quantization
from .quantize import STATE_PARAMS, QuantizationReport, encode, lowering_fits, quantize

_WIDTHS = ("weight_bits", "state_bits", "decay_bits", "trace_bits", "trace_frac_bits",
           "stdp_frac_bits")
ADVICE = ("serve an emulated board sized for the network (snnkit emulate --net NET.snn) or "
          "build one (snnkit build NET.snn --board ...)")


def _extremes(net: Network) -> list[tuple[float, float, str, str]]:
    """(most negative, most positive, where, width field) of the weights (STDP bounds
    counted as weights) and of the state parameters."""
    w, v = [], []
    for pr in net.projections:
        w.append((pr.weight, f"{pr.name}.weight"))
        if pr.stdp is not None:
            w += [(np.array([pr.stdp.w_min]), f"{pr.name}.stdp.w_min"),
                  (np.array([pr.stdp.w_max]), f"{pr.name}.stdp.w_max")]
    for pop in net.neuron_populations:
        d = pop.neuron.dynamics(pop.size)
        v += [(np.asarray(d[k], np.float64), f"{pop.name}.{k}") for k in STATE_PARAMS]
    return [(float(np.min(x, initial=0)), float(np.max(x, initial=0)), at, field)
            for group, field in ((w, "weight_bits"), (v, "state_bits")) for x, at in group]


def _fits(lo: float, hi: float, frac: int, bits: int) -> bool:
    """Do ``lo`` and ``hi`` round (as :func:`snnkit.quantize.quantize` does) into a signed
    ``bits``-bit word with ``frac`` fractional bits?"""
    lo_q, hi_q = encode(np.array([lo, hi]), frac)
    return bool(lo_q >= -(1 << (bits - 1)) and hi_q <= (1 << (bits - 1)) - 1)


def _most_frac(net: Network, c: HardwareConfig) -> int:
    """The most fractional bits with which every weight fits the board's weight width and
    every state parameter its state width (two's complement: -2^(b-1) .. 2^(b-1) - 1), and
    the self-synapses a delayed reset becomes on the core (:mod:`snnkit.lowering`) the weight
    width (with more, ``quantize`` takes the format and the compiler refuses the network).

    Raises
    ------
    NetworkError : a value does not fit even with 0 fractional bits (named, with its limit)
    """
    ext = _extremes(net)
    for lo, hi, at, field in ext:
        bits = getattr(c, field)
        if not _fits(lo, hi, 0, bits):
            cap = (1 << (bits - 1)) - 1
            x = max(abs(lo), abs(hi))
            raise NetworkError(f"{at}: |value| {x:g} does not fit the board's {bits}-bit "
                               f"format even with 0 fractional bits (largest {cap}, "
                               f"{x / cap:.2f} times too large); scale the network down, or "
                               f"{ADVICE} with wider words")
    delayed = [p for p in net.neuron_populations if p.neuron.reset == "delayed"]
    widths = {k: getattr(c, k) for k in _WIDTHS}
    for f in range(24, -1, -1):
        if all(_fits(lo, hi, f, getattr(c, field)) for lo, hi, _, field in ext) and all(
                lowering_fits(net, p, Quantization(**widths, frac_bits=f)) for p in delayed):
            return f
    return 0


def board_quantization(net: Network, c: HardwareConfig) -> Quantization:
    """The format ``net`` takes on a board built with ``c`` (see the module's docstring)."""
    soft = any(p.stdp is not None and p.stdp.bounds == "soft" for p in net.projections)
    widths = {k: getattr(c, k) for k in _WIDTHS}
    if soft:
        frac = c.frac_bits
    else:
        frac = _most_frac(net, c)
        if net.quantization is not None:
            frac = min(frac, net.quantization.frac_bits)
    return Quantization(**widths, frac_bits=frac)


@dataclass
class Fitted:
    """What :func:`to_board` returns."""

    net: Network  # quantised to the board's format
    quantization: QuantizationReport  # each parameter's error
    compiled: CompileReport  # the core's tables for it
    images: dict[str, str]  # the memory images (snnkit.compiler.build_images)


def to_board(net: Network, c: HardwareConfig, learning: bool | None = None) -> Fitted:
    """``net`` quantised to board ``c``'s format and compiled for it (``learning``: as
    :func:`snnkit.compiler.build_images`).

    Raises
    ------
    NetworkError : a value does not fit the format, or the network does not fit the board's
        sizes (what, and by how much; the message says what to do); nothing is written
    """
    if not isinstance(net, Network):
        raise NetworkError(f"expected a snnkit.Network, got {type(net).__name__}")
    check_kinds(net)  # no board takes these: no advice to size one
    q = board_quantization(net, c)
    try:
        qnet, report = quantize(net, q)
        compiled, images = build_images(qnet, c, learning)
    except NetworkError as e:
        raise NetworkError(f"{e}; {ADVICE}") from e
    return Fitted(qnet, report, compiled, images)


def format_line(c: HardwareConfig) -> str:
    """One line naming a board's format (what IDENTIFY reports)."""
    return (f"board format: {c.weight_bits}-bit weights, {c.state_bits}-bit states, "
            f"{c.decay_bits}-bit decays, {c.frac_bits} fractional bits (the network keeps "
            f"its own unless it has soft-bound STDP), traces {c.trace_bits} bits "
            f"({c.trace_frac_bits} fractional)")
