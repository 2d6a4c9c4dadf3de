"""ANN -> SNN conversion: a torch model of affine layers and ReLUs becomes a spiking Network.

The model is read as a chain of affine blocks, one per activation (:mod:`snnkit.ann`); each
block becomes one population of IF neurons with reset by subtraction. A block that is a
convolution becomes a convolution projection (one shared kernel, :meth:`Network.connect_conv`);
any other block a dense projection, its sparse connectivity kept as the mask.

Two modes (docs/convert.md):

* ``"rate"``: firing rates approximate the ReLU activations; thresholds are balanced from
  calibration data (max or robust percentile, per layer or per channel) and the normalisation
  is put into the weights, so every population has scalar parameters.
* ``"lossless"``: the model's activations are :class:`QCFS` quantisers with ``L`` levels; the SNN
  reproduces the quantised ANN exactly. Each layer integrates its whole input while held below
  threshold, is released by a timed "kick" (clock neurons), emits its count as a burst of at
  most ``L`` spikes and is then silenced. The spike count of every neuron equals the QCFS level.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from . import encoders
from .ann import SUPPORTED, Block, activation_scale, ann_forward, blocks, conv_apply, to_qcfs
from .convert_rnn import SequenceConversion, build
from .errors import NetworkError, SimulationError, count
from .network import IF, Network, Quantization
from .qcfs import QCFS
from .qrnn import QRNN
from .quantize import encode, integer_neuron, integer_weights, quantize
from .rnn import is_recurrent
from .rnn_quantize import to_qrnn
from .simulator import simulate

__all__ = ["convert", "Conversion", "QCFS", "to_qcfs", "blocks", "ann_forward", "SUPPORTED",
           "QRNN", "to_qrnn", "SequenceConversion"]

# --------------------------------------------------------------------------- integer layout


def _pow2_threshold(max_w: float, wmax_int: int) -> int:
    """Largest power of two ``th`` (>= 2) with ``max_w * th <= wmax_int``: LSBs per threshold."""
    if max_w <= 0:
        return 1 << max(1, int(math.log2(wmax_int)))
    return 1 << min(14, max(1, math.floor(math.log2(wmax_int / max_w))))


def _split(totals: np.ndarray, wmax_int: int) -> np.ndarray:
    """Spread per-target totals (in LSB) over N source neurons: weights ``[target, N]``.

    The integer part is split into whole LSBs so quantisation only rounds the fraction.
    """
    totals = np.asarray(totals, np.float64)
    whole = np.trunc(totals)
    # at least 2 sources: torch 2.13's CPU matmul returns garbage for an inner dimension of 1
    # (a [rows >= 32, 1] @ [1, n] product, as the simulator's int_matmul makes it)
    n = max(2, math.ceil((np.abs(whole).max(initial=0) + 1) / (wmax_int - 1)))
    q, r = np.divmod(np.abs(whole).astype(np.int64), n)
    w = np.repeat(q[:, None], n, 1) + (np.arange(n)[None, :] < r[:, None])
    w = w * np.sign(whole)[:, None]
    w[:, 0] += totals - whole
    return w.astype(np.float64)


# --------------------------------------------------------------------------- the result


@dataclass
class Conversion:
    """A converted network with what is needed to feed and read it.

    Attributes
    ----------
    network : the spiking network (a :class:`~snnkit.network.Network` with its fixed-point
        format attached)
    mode : "rate" or "lossless"
    input : "spikes", "poisson" or "current"
    layers : names of the neuron populations that stand for the ANN's blocks; the last is
        the output
    steps : time steps of one inference (lossless: fixed by the schedule; rate: a default)
    levels : QCFS levels per layer (lossless)
    input_levels : K, spikes per input at value 1.0 (lossless spike input)
    kick_steps : step at which each layer is released (lossless)
    output_lift : rate mode: what was added to every output's bias (:func:`_lift`; 0: none)
    """

    network: Network
    mode: str
    input: str
    layers: list[str]
    steps: int
    levels: list[int] = field(default_factory=list)
    input_levels: int = 0
    kick_steps: list[int] = field(default_factory=list)
    input_shape: tuple = ()
    output_lift: float = 0.0

    @property
    def output(self) -> str:
        return self.layers[-1]

    def encode(self, x, steps: int | None = None, seed: int | None = 0) -> torch.Tensor:
        """Input array ``[steps, batch, inputs]`` for samples ``x`` ([batch, ...]).

        Rate mode: regular spikes with rate ``x`` (:func:`snnkit.encoders.regular`), Poisson
        spikes with rate ``x``, or a constant current. Lossless: ``round(x*K)`` spikes on the
        first steps (a burst), or a current on step 0 only.

        Raises
        ------
        SimulationError : values outside [0, 1] where spikes or lossless mode need them, or
            ``steps`` shorter than the lossless schedule
        """
        steps = self.steps if steps is None else steps
        x = np.asarray(x, np.float64)
        x = x.reshape(len(x), -1) if x.ndim > 1 else x[None]
        if x.shape[1] != self.network.n_inputs:
            raise SimulationError(f"x: {x.shape[1]} values per sample, the network has "
                                  f"{self.network.n_inputs} inputs")
        if not np.all(np.isfinite(x)):
            raise SimulationError("x: contains NaN or inf")
        if (self.input != "current" or self.mode == "lossless") and (x.min() < 0 or x.max() > 1):
            raise SimulationError(f"x: {self.mode} mode with {self.input} input needs values in "
                                  f"[0, 1], got [{x.min():g}, {x.max():g}]")
        if self.mode == "lossless" and steps < self.steps:
            raise SimulationError(f"steps: the lossless schedule needs {self.steps} steps, "
                                  f"got {steps}")
        if self.mode == "rate":
            if self.input == "current":
                return encoders.constant_current(x, steps)
            if self.input == "spikes":
                return encoders.regular(x, steps)
            return encoders.poisson(x, steps, seed)
        if self.input == "current":
            out = np.zeros((steps,) + x.shape)
            out[0] = x
            return torch.from_numpy(out)
        m = np.floor(x * self.input_levels + 0.5)
        return torch.from_numpy(np.arange(steps)[:, None, None] < m[None])

    def run(self, x, steps: int | None = None, backend: str = "float", seed: int | None = 0,
            **options):
        """Simulate samples ``x``; returns the :class:`~snnkit.result.Result`."""
        steps = self.steps if steps is None else steps
        return simulate(self.network, self.encode(x, steps, seed), steps, backend, **options)

    def predict(self, x, steps: int | None = None, backend: str = "float", seed=0) -> np.ndarray:
        """Class per sample: the output neuron with most spikes (ties: lowest index)."""
        return self.run(x, steps, backend, seed).predict(self.output).cpu().numpy()

    def spike_count(self, result) -> np.ndarray:
        """Spikes per sample in the converted layers (inputs, clocks and bias excluded)."""
        return sum(result.spikes[n].sum((0, 2)) for n in self.layers).cpu().numpy()

    def reference(self, x, backend: str = "float") -> list[np.ndarray]:
        """The quantised ANN that lossless mode reproduces, computed in closed form.

        Per layer, ``count = clip(floor((v_init + input + kick) / threshold), 0, L)`` from the
        network's own weights: float64 for "float", the hardware's integers for "fixed".
        Returns the count arrays ``[batch, n]`` of every layer.
        """
        if self.mode != "lossless":
            raise NetworkError("reference: only defined for lossless conversions")
        return _reference(self, x, backend == "fixed")


def _reference(conv: Conversion, x, fixed: bool) -> list[np.ndarray]:
    net = conv.network
    qnet = quantize(net)[0] if fixed else net
    q = net.quantization
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    if conv.input == "spikes":
        src = np.floor(x * conv.input_levels + 0.5)
    else:
        src = encode(x, q.frac_bits) if fixed else x

    def weights(i):
        return integer_weights(qnet, i, q).astype(np.float64) if fixed else \
            net.projections[i].weight

    def drive_of(pr, w, s):  # exact in float64: integers, or weights on a fine dyadic grid
        return s @ w.T if pr.conv is None else conv_apply(pr.conv, w, s)

    counts, prev = [], "input"
    for k, name in enumerate(conv.layers):
        pop = net.population(name)
        if fixed:
            ip = integer_neuron(qnet, pop, q)
            v0, th = float(ip.v_init[0]), float(ip.threshold[0])
        else:
            v0, th = float(pop.neuron.v_init), float(pop.neuron.threshold)
        drive = np.full((len(x), pop.size), v0)
        for i, pr in enumerate(net.projections):
            if pr.target != name:
                continue
            if pr.source == prev:
                d = drive_of(pr, weights(i), src)
                if fixed and prev == "input" and conv.input == "current" and q.frac_bits:
                    d = np.floor((d + (1 << (q.frac_bits - 1))) / (1 << q.frac_bits))
                drive += d
            elif pr.source == f"clock{k}":
                drive += weights(i).sum(1)
        src = np.clip(np.floor(drive / th), 0, conv.levels[k])
        counts.append(src)
        prev = name
    return counts


# --------------------------------------------------------------------------- convert


def convert(model: nn.Module, calibration_data=None, *, mode: str | None = None,
            input: str = "spikes", normalization: str = "percentile", percentile: float = 99.9,
            per_channel: bool = False, v_init: float = 0.5, steps: int = 32,
            input_levels: int = 16, weight_bits: int = 8, state_bits: int | None = None,
            levels: int = 4, output_levels: int | None = None, input_code: str = "binary",
            bias: str = "clock", convolutions: str = "shared",
            name: str = "converted") -> Conversion | SequenceConversion:
    """Convert a torch ANN, or a recurrent model, into a spiking network.

    Parameters
    ----------
    model : nn.Sequential or a simple chain module of supported layers (:data:`SUPPORTED`);
        or a recurrent model (a :class:`QRNN`, ``nn.RNN(nonlinearity="relu")``, a loop of
        ``nn.Linear`` + ``nn.ReLU``/``QCFS`` modules: see :mod:`snnkit.rnn`), converted
        exactly into a recurrent network, one step per sequence element
        (:func:`snnkit.convert_rnn.build`; returns a :class:`SequenceConversion`)
    calibration_data : samples ``[batch, ...]`` shaped like the model's input; used for the
        input shape and, in rate mode, to balance thresholds of ReLU layers (recurrent models:
        sequences ``[batch, T, ...]``, for the clip values of ReLU layers)
    mode : "rate" (IF rate coding) or "lossless" (needs every activation, the output's
        included, to be a :class:`QCFS`; see :func:`to_qcfs`); default "rate", and
        "lossless" for recurrent models (their only mode)
    levels, output_levels, input_code, bias : recurrent models: levels of ReLU layers and of
        the output when a float model is quantised (:func:`to_qrnn`), how an element's
        values are sent ("binary", "split" or "unary", :class:`QRNN`) and how per-neuron offsets are
        delivered ("clock", "input" or "neuron", :func:`snnkit.convert_rnn.build`)
    input : "spikes" (the default, what the hardware takes: rate mode, regular spike trains
        of rate ``x``; lossless, a burst of ``round(x * input_levels)`` spikes; ``x`` in
        [0, 1]), "poisson" (rate mode: Poisson spikes of rate ``x``) or "current" (an analog
        first layer, any real ``x``; the simulators run it, the hardware does not)
    normalization : "percentile" (robust, ``percentile`` of positive activations) or "max"
    per_channel : balance per output channel (conv) or neuron (linear) instead of per layer
    v_init : rate mode: initial membrane potential as a fraction of the threshold
    steps : rate mode: default number of steps per inference
    input_levels : lossless spike input: spikes for an input of 1.0 (digits: 16)
    weight_bits, state_bits : the fixed-point format attached to the network (state_bits
        default: 16, or what the lossless schedule needs)
    convolutions : "shared" (a block that is a convolution becomes a convolution projection,
        one kernel for every position; :class:`snnkit.training.SNN` trains the kernel) or
        "dense" (expanded to its matrix with the connectivity as the mask, the same integers
        and spikes: each synapse then trains its own weight)

    Returns
    -------
    :class:`Conversion`

    Raises
    ------
    NetworkError : unsupported layers (named with their position), bad options, a lossless
        model without QCFS activations, or values that do not fit the requested format
    """
    if calibration_data is None and not isinstance(model, QRNN):
        raise NetworkError("calibration_data: needed (at least one sample, for the input shape)")
    if isinstance(model, nn.Module) and is_recurrent(model):
        return _recurrent(model, calibration_data, mode, levels, output_levels, input_levels,
                          input_code, weight_bits, percentile, bias, state_bits, name)
    _check_options(mode or "rate", input, normalization, percentile)
    count("steps", steps, error=NetworkError)
    if convolutions not in ("shared", "dense"):
        raise NetworkError(f"convolutions: must be 'shared' or 'dense', got {convolutions!r}")
    asked, mode = mode, mode or "rate"
    calib = np.asarray(calibration_data.detach().cpu() if isinstance(calibration_data, torch.Tensor)
                       else calibration_data, np.float64)
    if calib.ndim < 2 or len(calib) == 0:
        raise NetworkError(f"calibration_data: expected [batch, ...] samples, got shape "
                           f"{calib.shape}")
    bad = np.flatnonzero(~np.isfinite(calib.reshape(len(calib), -1)).all(1))
    if bad.size:  # the scales would come from the finite rest, or from nothing
        raise NetworkError(f"calibration_data: NaN or inf in sample {bad[0]} ({bad.size} of "
                           f"{len(calib)} samples)")
    try:
        blks = blocks(model, calib.shape[1:])
    except NetworkError as e:
        if calib.ndim < 3 or "cannot be traced" not in str(e):
            raise
        try:  # a forward that loops over the elements of a sequence: fx cannot trace it
            return _recurrent(model, calib, asked, levels, output_levels, input_levels,
                              input_code, weight_bits, percentile, bias, state_bits, name)
        except NetworkError as e2:
            raise NetworkError(f"{e}; read as a recurrent model: {e2}") from e2
    if input != "current" and (calib.min() < 0 or calib.max() > 1):
        raise NetworkError(f"calibration_data: values in [{calib.min():g}, {calib.max():g}], "
                           f"but {input!r} input (the default is 'spikes', what the hardware "
                           f"takes) encodes values in [0, 1]: scale the inputs to [0, 1], or "
                           f"pass input='current' (an analog first layer: the simulators run "
                           f"it, the hardware does not)")
    if mode == "lossless":
        bad = [b for b in blks if b.act != "qcfs"]
        if bad:
            raise NetworkError(f"model layer {bad[0].positions[-1]}: lossless mode needs every "
                               f"activation, the output's included, to be QCFS (see "
                               f"snnkit.convert.to_qcfs); this block ends with "
                               f"{bad[0].act or 'no activation'}")
        if input == "poisson":
            raise NetworkError("input: lossless mode needs 'spikes' (burst) or 'current', "
                               "Poisson spikes are not exact")
        out = _lossless(blks, calib, input, input_levels, weight_bits, state_bits, name)
    else:
        out = _rate(blks, calib, input, normalization, percentile, per_channel, v_init, steps,
                    weight_bits, state_bits or 16, name)
    if convolutions == "dense":
        out.network = _expanded(out.network)
    return out


def _expanded(net: Network) -> Network:
    """``net`` with every convolution projection as its dense matrix and mask."""
    out = copy.deepcopy(net)
    out.projections = []
    for pr in net.projections:
        if pr.conv is None:
            out.projections.append(copy.deepcopy(pr))
        else:
            out.connect(pr.source, pr.target, pr.dense_weight(), mask=pr.connections(),
                        delay=pr.delay)
    return out


def _recurrent(model, calib, mode, levels, output_levels, input_levels, input_code,
               weight_bits, percentile, bias, state_bits, name) -> SequenceConversion:
    if mode not in (None, "lossless"):
        raise NetworkError(f"mode: recurrent models convert exactly (mode='lossless'), "
                           f"got {mode!r}")
    q = to_qrnn(model, calib, levels, output_levels, input_levels, input_code, weight_bits,
                percentile)
    return build(q, bias=bias, state_bits=state_bits, name=name)


def _check_options(mode, input, normalization, percentile):
    if mode not in ("rate", "lossless"):
        raise NetworkError(f"mode: must be 'rate' or 'lossless', got {mode!r}")
    if input not in ("current", "poisson", "spikes"):
        raise NetworkError(f"input: must be 'current', 'poisson' or 'spikes', got {input!r}")
    if normalization not in ("max", "percentile"):
        raise NetworkError(f"normalization: must be 'max' or 'percentile', got {normalization!r}")
    if not 0 < percentile <= 100:
        raise NetworkError(f"percentile: must be in (0, 100], got {percentile!r}")


def _unit_weights(blk: Block, unit_in: np.ndarray, unit_out: np.ndarray):
    """Weights, bias and convolution geometry per unit of source and target activity (count or
    rate). A convolution stays one when each unit is one per channel (per layer, per channel);
    per-neuron units need the dense matrix."""
    b = blk.bias / unit_out
    if blk.conv is not None:
        cin, cout = _per_channel(unit_in, blk.conv.in_shape), \
            _per_channel(unit_out, blk.conv.out_shape)
        if cin is not None and cout is not None:  # channel c's kernel scaled: as the matrix
            co, cg = blk.weight.shape[:2]
            ci = (np.arange(co)[:, None] // (co // blk.conv.groups)) * cg + np.arange(cg)
            return (blk.weight * cin[ci][:, :, None, None] / cout[:, None, None, None], b,
                    blk.conv)
    return blk.dense() * unit_in[None, :] / unit_out[:, None], b, None


def _per_channel(unit: np.ndarray, shape) -> np.ndarray | None:
    """One value per channel of a ``[C, H, W]`` population's per-neuron ``unit``, or None."""
    u = unit.reshape(shape[0], -1)
    return u[:, 0].copy() if np.all(u == u[:, :1]) else None


def _shapes(layers, n_in: int):
    """Population shapes: a convolution's source and target get theirs (``[C, H, W]``); where
    one population would need two shapes, the later convolution is expanded to its matrix."""
    shapes = [None] * (len(layers) + 1)  # input, then one per layer
    for k, (w, b, conv) in enumerate(layers):
        if conv is None:
            continue
        if shapes[k] not in (None, conv.in_shape):
            layers[k] = (conv.dense(w), b, None)
            continue
        shapes[k], shapes[k + 1] = conv.in_shape, conv.out_shape
    return [s or n for s, n in zip(shapes, [n_in] + [len(b) for _, b, _ in layers])]


def _connect(net: Network, source: str, target: str, w: np.ndarray, conv, blk: Block) -> None:
    if conv is None:  # (a convolution block expanded: its connectivity as the mask)
        net.connect(source, target, w, mask=blk.mask if blk.conv is None else
                    blk.conv.structure())
    else:
        net.connect_conv(source, target, w, **conv.options())


def _row_sums(w: np.ndarray, conv) -> np.ndarray:
    """Per-target sum of the weights ``[target]`` (a convolution's taps that reach the
    source at each position). Exact: the weights lie on a dyadic grid."""
    if conv is None:
        return w.sum(1)
    return conv_apply(conv, w, np.ones((1, int(np.prod(conv.in_shape)))))[0]


def _layer_names(n: int) -> list[str]:
    return [f"layer{k + 1}" for k in range(n - 1)] + ["output"]


def _rate(blks, calib, input, normalization, percentile, per_channel, v_init, steps,
          weight_bits, state_bits, name) -> Conversion:
    acts = ann_forward(blks, calib)
    lift = _lift(blks[-1], acts[-1], normalization, percentile, steps)
    if lift:
        blks = [*blks[:-1], dataclasses.replace(blks[-1], bias=blks[-1].bias + lift)]
        acts[-1] = acts[-1] + lift
    wmax = (1 << (weight_bits - 1)) - 1
    unit, layers = [np.ones(calib[0].size)], []
    for k, (blk, a) in enumerate(zip(blks, acts)):
        if blk.act == "qcfs":
            unit.append(np.full(a.shape[1], blk.lam))
        else:  # the output's counts are compared with each other: one scale for all of them
            unit.append(activation_scale(np.maximum(a, 0), blk.shape, normalization, percentile,
                                         per_channel and k < len(blks) - 1))
        layers.append(_unit_weights(blk, unit[-2], unit[-1]))
    shapes = _shapes(layers, calib[0].size)
    ths = [_pow2_threshold(np.abs(w).max(initial=0), wmax) for w, _, _ in layers]
    frac = int(math.log2(max(ths)))
    lsb = 2.0 ** -frac
    net = Network(dt=1e-3, name=name,
                  quantization=Quantization(weight_bits=weight_bits, state_bits=state_bits,
                                            frac_bits=frac))
    net.add_input("input", shapes[0], "current" if input == "current" else "spikes")
    has_bias = any(np.any(b != 0) for _, b, _ in layers)
    biases = [_split(b * th, wmax) for (_, b, _), th in zip(layers, ths)] if has_bias else []
    if has_bias:
        nb = max(s.shape[1] for s in biases)
        net.add_population("bias", nb, IF(threshold=lsb, bias=lsb))  # fires on every step
    names = _layer_names(len(blks))
    for k, ((w, b, conv), th) in enumerate(zip(layers, ths)):
        net.add_population(names[k], shapes[k + 1],
                           IF(threshold=th * lsb, v_init=v_init * th * lsb))
        _connect(net, "input" if k == 0 else names[k - 1], names[k], w * th * lsb, conv,
                 blks[k])
        if has_bias and np.any(biases[k] != 0):
            bw = np.zeros((len(b), nb))
            bw[:, :biases[k].shape[1]] = biases[k]
            net.connect("bias", names[k], bw * lsb)
    return Conversion(net, "rate", input, names, steps, input_shape=calib.shape[1:],
                      output_lift=lift)


def _lift(blk: Block, logits: np.ndarray, normalization: str, percentile: float,
          steps: int) -> float:
    """What to add to every bias of a linear output layer (logits) so that each calibration
    sample's top class fires within ``steps``: an IF neuron never fires on a negative logit,
    and a sample whose logits are all negative (or its top one too small for a spike) had
    every count 0, read as class 0 (a small digits CNN: 9% of the samples, 91.6% where the
    ANN has 96.9%). The same amount for every class leaves the ANN's argmax as it was; it
    costs rate resolution, so it is only as large as the weakest sample needs."""
    if blk.act is not None or len(logits) == 0:
        return 0.0
    top = float(logits.max(1).min())
    up = max(0.0, -top)
    scale = float(activation_scale(np.maximum(logits + up, 0), blk.shape, normalization,
                                   percentile, False).max())
    return max(0.0, scale / steps - top)


def _lossless(blks, calib, input, input_levels, weight_bits, state_bits, name) -> Conversion:
    if not isinstance(input_levels, int) or input_levels < 1:
        raise NetworkError(f"input_levels: must be an integer >= 1, got {input_levels!r}")
    wmax = (1 << (weight_bits - 1)) - 1
    n_in = calib[0].size
    unit = [np.full(n_in, 1.0 / input_levels if input == "spikes" else 1.0)]
    nmax = [input_levels if input == "spikes" else 1]
    layers = []
    for blk in blks:
        unit.append(np.full(len(blk.bias), blk.lam / blk.levels))
        layers.append(_unit_weights(blk, unit[-2], unit[-1]))
        nmax.append(blk.levels)
    shapes = _shapes(layers, n_in)
    ths = [_pow2_threshold(np.abs(w).max(initial=0), wmax) for w, _, _ in layers]
    frac = int(math.log2(max(ths)))
    fine = 2.0 ** -8  # float weights on a fine grid (in LSB): float32 sums stay exact
    kick = [0 if input == "current" else input_levels - 1]
    for blk in blks:
        kick.append(kick[-1] + blk.levels)
    plan, bound = [], 0.0
    for k, ((w, b, conv), th) in enumerate(zip(layers, ths)):
        w_lsb = np.round(w * th / fine) * fine
        b_lsb = b * th
        pos = _row_sums(np.maximum(np.maximum(w_lsb, np.round(w_lsb)), 0), conv) * nmax[k]
        neg = _row_sums(np.minimum(np.minimum(w_lsb, np.round(w_lsb)), 0), conv) * nmax[k]
        hold = math.ceil(pos.max(initial=0)) + th
        v0_max = th / 2 + (pos + np.abs(b_lsb) + 1).max(initial=0)
        stop = max(0, math.ceil(v0_max - blks[k].levels * th)) + th
        bound = max(bound, hold + th - neg.min(initial=0) + 1, v0_max + stop + abs(neg.min()))
        plan.append((w_lsb, b_lsb, th, hold, stop))
    need = math.ceil(math.log2(bound + 1)) + 1
    need = max(need, math.ceil(math.log2(kick[-1] + 2)) + 1)
    if state_bits is None:
        state_bits = max(16, need)
    elif state_bits < need:
        raise NetworkError(f"state_bits: the lossless schedule needs {need}-bit states (hold-down "
                           f"and kick of up to {bound:.0f} LSB), got {state_bits}")
    lsb = 2.0 ** -frac
    net = Network(dt=1e-3, name=name,
                  quantization=Quantization(weight_bits=weight_bits, state_bits=state_bits,
                                            frac_bits=frac))
    net.add_input("input", shapes[0], "current" if input == "current" else "spikes")
    kicks = [_split(hold + b, wmax) for (_, b, _, hold, _) in plan]
    stops = [_split(np.full(len(b), -float(stop)), wmax) for (_, b, _, _, stop) in plan]
    sizes = [max(kicks[k].shape[1], stops[k - 1].shape[1] if k else 1) for k in range(len(plan))]
    sizes.append(stops[-1].shape[1])
    floor_v = -float(1 << (state_bits - 1))
    for k, t in enumerate(kick):  # clock k fires once, at step kick[k]
        net.add_population(f"clock{k}", sizes[k], IF(threshold=(t + 1) * lsb, bias=lsb,
                                                     reset="value", v_reset=floor_v * lsb))
    names = _layer_names(len(blks))
    for k, (w_lsb, b_lsb, th, hold, _) in enumerate(plan):
        net.add_population(names[k], shapes[k + 1],
                           IF(threshold=th * lsb, v_init=(th / 2 - hold) * lsb))
        _connect(net, "input" if k == 0 else names[k - 1], names[k], w_lsb * lsb, layers[k][2],
                 blks[k])
        for clock, part in ((k, kicks[k]), (k + 1, stops[k])):
            cw = np.zeros((len(b_lsb), sizes[clock]))
            cw[:, :part.shape[1]] = part
            net.connect(f"clock{clock}", names[k], cw * lsb)
    return Conversion(net, "lossless", input, names, kick[-1], [b.levels for b in blks],
                      input_levels if input == "spikes" else 0, kick[:-1],
                      input_shape=calib.shape[1:])
