"""Recurrent conversion: a :class:`~snnkit.qrnn.QRNN` becomes a recurrent spiking network that
reproduces it exactly, in one time step per sequence element (docs/convert.md, "Recurrent
networks").

Each QRNN unit with ``L`` levels becomes ``L`` memoryless neurons (``LIF(beta=0)``: the
membrane is this step's input plus the bias, nothing is carried to the next step), its
*level neurons*: neuron ``j`` (1..L) fires iff ``a . s + c0 + th/2 >= j * th``, so the number
of them that fire is ``clip(floor(u + 1/2), 0, L)``, the QCFS level. The level neurons of one
unit share its weights; a source unit's level arrives as the number of its level neurons
that fired. Every step computes one element completely:

* the input population carries element ``t`` at step ``t`` (binary, split or unary code, one step);
* feature layers and the first recurrent layer see it through delay-0 projections, deeper
  layers see the layer below at the same step;
* each recurrent layer sees its own level neurons of step ``t - 1`` through a delay-1
  projection onto itself: the recurrent state is carried by last step's spike counts;
* read-out layers follow the last recurrent layer at every step; at the last step they are
  the QRNN's output.

The per-neuron offsets (bias, the ``+ th/2`` of QCFS and ``-(j-1) th`` per level) come from a
"bias" population that fires on every step, through ordinary synapses (``bias="clock"``,
what the hardware takes); from clock neurons appended to the input population, which
:meth:`SequenceConversion.encode` sets on every step (``bias="input"``: one population and
one projection fewer, so a one-layer model fits the iCE40 target's 4 populations and 4
projections); or as per-neuron biases (``bias="neuron"``, simulators only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import NetworkError, SimulationError
from .network import IF, LIF, Network, Quantization
from .qrnn import (
    QRNN,
    IntLayer,
    code_spikes,
    code_weights,
    input_integers,
    input_multiplier,
    reference_levels,
)
from .simulator import simulate

STEPS_PER_ELEMENT = 1


def _spread(totals: np.ndarray, wmax: int, least: int = 2) -> np.ndarray:
    """Integer totals (LSB) over ``n`` sources, each weight within ``wmax``: ``[target, n]``.

    At least ``least`` sources: torch 2.13's CPU int8 matmul returns garbage for an inner
    dimension of 1 (see snnkit.convert._split)."""
    totals = np.asarray(totals, np.int64)
    n = max(least, math.ceil(np.abs(totals).max(initial=0) / wmax))
    q, r = np.divmod(np.abs(totals), n)
    w = q[:, None] + (np.arange(n)[None, :] < r[:, None])
    return w * np.sign(totals)[:, None]


def _names(layers: list[IntLayer]) -> list[str]:
    out, count = [], {"feature": 0, "recurrent": 0, "readout": 0}
    n_read = sum(ly.kind == "readout" for ly in layers)
    for ly in layers:
        count[ly.kind] += 1
        if ly.kind == "readout" and count["readout"] == n_read:
            out.append("output")
        else:
            out.append({"feature": "feature", "recurrent": "hidden",
                        "readout": "readout"}[ly.kind] + str(count[ly.kind]))
    return out


# --------------------------------------------------------------------------- the result


@dataclass
class SequenceConversion:
    """A converted QRNN: the spiking network and how to feed and read it.

    Attributes
    ----------
    network : the recurrent spiking network (fixed-point format attached)
    layers : population of each QRNN layer (features, recurrent, read-out; the last is
        "output")
    levels : levels L per layer (each unit is L neurons, unit-major)
    input_code, input_levels, input_shape : how an element is sent (see :class:`QRNN`)
    qrnn : the quantised RNN the network reproduces
    """

    network: Network
    layers: list[str]
    levels: list[int]
    input_code: str
    input_levels: int
    input_shape: tuple
    qrnn: QRNN | None = None
    kinds: list[str] = field(default_factory=list)
    mode: str = "lossless"
    steps_per_element: int = STEPS_PER_ELEMENT
    clock_inputs: int = 0  # input neurons after the data ones that fire on every step

    @property
    def output(self) -> str:
        return self.layers[-1]

    def encode(self, x) -> torch.Tensor:
        """Input spikes ``[T, batch, inputs]`` for sequences ``x`` ([batch, T, *input_shape],
        values in [0, 1] on the grid ``1/input_levels``): element ``t`` on step ``t``.

        Raises
        ------
        SimulationError : a wrong shape or values off the grid
        """
        try:
            m = input_integers(x, self.input_shape, self.input_levels).long().numpy()
        except NetworkError as e:
            raise SimulationError(str(e)) from None
        m = m.reshape(m.shape[0], m.shape[1], -1)
        s = code_spikes(self.input_code, self.input_levels, m)
        s = s.reshape(m.shape[0], m.shape[1], -1).astype(bool)
        if self.clock_inputs:
            s = np.concatenate([s, np.ones(s.shape[:2] + (self.clock_inputs,), bool)], 2)
        return torch.from_numpy(np.ascontiguousarray(s.transpose(1, 0, 2)))

    def run(self, x, backend: str = "float", **options):
        """Simulate sequences ``x``, one step per element; returns the
        :class:`~snnkit.result.Result`."""
        inputs = self.encode(x)
        return simulate(self.network, inputs, inputs.shape[0], backend, **options)

    def levels_of(self, result) -> list[np.ndarray]:
        """Each layer's levels decoded from ``result``: spikes per unit, ``[T, batch, n]`` for
        feature and recurrent layers, ``[batch, n]`` at the last step for read-out layers (as
        :meth:`QRNN.levels` returns them)."""
        out = []
        for name, lv, kind in zip(self.layers, self.levels, self.kinds):
            s = result.spikes[name].cpu().numpy()
            c = s.reshape(s.shape[0], s.shape[1], -1, lv).sum(-1).astype(np.int64)
            out.append(c[-1] if kind == "readout" else c)
        return out

    def predict(self, x=None, backend: str = "float", result=None) -> np.ndarray:
        """Class per sequence: the output unit with the most level neurons firing at the last
        step (ties: the lowest index). Give sequences ``x`` or a ``result`` of a run (e.g.
        from :meth:`snnkit.Device.run` on :meth:`encode`)."""
        if result is None:
            result = self.run(x, backend)
        return self.levels_of(result)[-1].argmax(-1)

    def spike_count(self, result) -> np.ndarray:
        """Spikes per sequence in the converted layers (inputs and the bias population
        excluded), ``[batch]``."""
        return sum(result.spikes[n].sum((0, 2)) for n in self.layers).cpu().numpy()

    def reference(self, x) -> list[np.ndarray]:
        """The QRNN's exact levels for ``x`` (:meth:`QRNN.levels`), which every backend
        reproduces."""
        if self.qrnn is None:
            raise NetworkError("reference: this conversion has no QRNN attached")
        return self.qrnn.levels(x)


# --------------------------------------------------------------------------- building


def build(qrnn: QRNN, bias: str = "clock", state_bits: int | None = None,
          name: str = "sequence") -> SequenceConversion:
    """The spiking network of a QRNN (see the module docstring).

    Parameters
    ----------
    qrnn : the quantised RNN
    bias : "clock" (offsets through synapses from a population firing every step: runs on
        the hardware), "input" (the same from clock neurons at the end of the input
        population: fewer populations and projections) or "neuron" (per-neuron biases)
    state_bits : membrane width; default: 16, or what the largest possible input needs

    Raises
    ------
    NetworkError : a bad option, or a ``state_bits`` too small for the network's sums
    """
    if not isinstance(qrnn, QRNN):
        raise NetworkError(f"build: expected a snnkit.qrnn.QRNN, got {type(qrnn).__name__}")
    if bias not in ("clock", "input", "neuron"):
        raise NetworkError(f"bias: must be 'clock', 'input' or 'neuron', got {bias!r}")
    layers = qrnn.integers()
    wmax = qrnn.wmax
    code = code_weights(qrnn.input_code, qrnn.input_levels)
    n_values = int(np.prod(qrnn.input_shape))
    frac = max(int(ly.th).bit_length() - 1 for ly in layers)
    lsb = 2.0 ** -frac
    names = _names(layers)

    # every layer's weights over its source neurons, offsets and the largest |membrane|
    plan, bound = [], 0
    src_levels, src_mult = None, code
    for ly in layers:
        lv = ly.levels
        if src_levels is None:  # the input: value v's neuron b carries w[:, v] * code[b]
            w = (ly.weight[:, :, None] * src_mult[None, None, :]).reshape(len(ly.weight), -1)
            msk = None if ly.mask is None else np.repeat(ly.mask, len(code), 1)
        else:
            w = np.repeat(ly.weight, src_levels, 1)
            msk = None if ly.mask is None else np.repeat(ly.mask, src_levels, 1)
        w, msk = np.repeat(w, lv, 0), None if msk is None else np.repeat(msk, lv, 0)
        if np.abs(w).max(initial=0) > wmax:
            raise NetworkError(f"{names[len(plan)]}: a weight of {np.abs(w).max()} LSB does not "
                               f"fit {qrnn.weight_bits}-bit weights")
        rec = None if ly.recurrent is None else np.repeat(np.repeat(ly.recurrent, lv, 0), lv, 1)
        off = (ly.bias[:, None] + ly.th // 2 - ly.th * np.arange(lv)[None, :]).reshape(-1)
        drive = np.abs(w).sum(1) + (0 if rec is None else np.abs(rec).sum(1)) + np.abs(off)
        bound = max(bound, int(drive.max(initial=0)) + ly.th)
        plan.append((w, msk, rec, off, ly.th, lv))
        src_levels = lv
    need = max(16, bound.bit_length() + 1)
    if state_bits is None:
        state_bits = need
    elif state_bits < need:
        raise NetworkError(f"state_bits: the network's sums need {need}-bit states (up to "
                           f"{bound} LSB), got {state_bits}")
    if state_bits > 24:
        raise NetworkError(f"state_bits: the network's sums need {state_bits}-bit states; the "
                           f"float simulator is exact up to 24 (use fewer levels or units)")

    net = Network(dt=1e-3, name=name, quantization=Quantization(
        weight_bits=qrnn.weight_bits, state_bits=state_bits, frac_bits=frac))
    n_in = n_values * len(code)
    clocks, n_clock = [], 0
    if bias != "neuron":
        common = [(int(off.max()) + int(off.min())) // 2 for _, _, _, off, _, _ in plan]
        clocks = [_spread(p[3] - c, wmax) for p, c in zip(plan, common)]
        n_clock = max(c.shape[1] for c in clocks)
    pad = max(0, 2 - n_in) if bias != "input" else max(0, 2 - n_in - n_clock)  # see _spread
    net.add_input("input", n_in + pad + (n_clock if bias == "input" else 0))
    if bias == "clock":
        net.add_population("bias", n_clock, IF(threshold=lsb, bias=lsb))  # fires every step
    prev = "input"
    for k, ((w, msk, rec, off, th, _), name_k) in enumerate(zip(plan, names)):
        per = off * lsb if bias == "neuron" else float(common[k]) * lsb
        net.add_population(name_k, len(w), LIF(beta=0.0, threshold=th * lsb, bias=per))
        cw = np.zeros((len(w), n_clock), np.int64)
        if n_clock:
            cw[:, :clocks[k].shape[1]] = clocks[k]
        if prev == "input":
            w = np.concatenate([w, np.zeros((len(w), pad), np.int64)], 1)
            msk = None if msk is None else np.concatenate([msk, np.zeros((len(w), pad), bool)], 1)
            if bias == "input":  # the clock columns join the first layer's projection
                w = np.concatenate([w, cw], 1)
                msk = None if msk is None else np.concatenate([msk, cw != 0], 1)
        net.connect(prev, name_k, w * lsb, mask=msk)
        if rec is not None:
            net.connect(name_k, name_k, rec * lsb, delay=1)
        if bias == "clock":
            net.connect("bias", name_k, cw * lsb)
        elif bias == "input" and prev != "input":  # the clock neurons only
            mask = np.zeros((len(w), n_in + pad + n_clock), bool)
            mask[:, n_in + pad:] = cw != 0
            full = np.zeros(mask.shape)
            full[:, n_in + pad:] = cw
            net.connect("input", name_k, full * lsb, mask=mask)
        prev = name_k
    return SequenceConversion(net, names, [p[5] for p in plan], qrnn.input_code,
                              qrnn.input_levels, qrnn.input_shape, qrnn,
                              [ly.kind for ly in layers],
                              clock_inputs=n_clock if bias == "input" else 0)


def same_levels(conv: SequenceConversion, result, ref) -> np.ndarray:
    """Per sample ``[batch]``: every layer's levels in ``result`` at every element equal
    ``ref`` (:meth:`SequenceConversion.reference`)."""
    ok = np.ones(len(ref[-1]), bool)
    for got, want in zip(conv.levels_of(result), ref):
        axes = tuple(i for i in range(got.ndim) if i != got.ndim - 2)  # all but the batch
        ok &= (got == want).all(axis=axes)
    return ok


def check_exact(conv: SequenceConversion, x, backend: str = "float") -> bool:
    """True when the network's levels equal the QRNN's on ``x``, every layer and element."""
    got, ref = conv.levels_of(conv.run(x, backend)), conv.reference(x)
    return all(np.array_equal(g, r) for g, r in zip(got, ref))


__all__ = ["SequenceConversion", "build", "check_exact", "same_levels", "reference_levels",
           "input_multiplier"]
