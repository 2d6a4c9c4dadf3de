"""Network -> the emulator core's parameters and memory images (docs/hardware.md).

:func:`compile` writes ``params.vh`` (the hardware configuration as Verilog defines), the
``$readmemh`` images of the population table, the projection table and the weight memory,
and a report (``report.json`` / ``report.txt``). Every integer comes from
:mod:`snnkit.quantize`, the same functions the fixed-point simulator uses, so the two can
never disagree.

The core stores one weight word per (source, target) pair of every projection (its
``[source, target]`` block in the weight memory), so a convolution projection is expanded to
its dense matrix (:meth:`~snnkit.conv.Conv.dense`: the kernel at every position, zeros where
no tap joins a pair): ``source size x target size`` words instead of the kernel's
``C_out x C_in/groups x kH x kW``. The fit check names that cost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import NetworkError
from .lowering import Lowered, lower
from .memory_map import TABLE_STRIDE, PopField, PopFlag, ProjField, ProjFlag
from .network import Network
from .quantize import (
    auto_quantization,
    delayed_reset_weights,
    integer_neuron,
    integer_stdp,
    integer_weights,
    quantize,
)

# the table rows' keys, in field order (snnkit.memory_map: PopField, ProjField)
POP_FIELDS = tuple(f.name.lower() for f in PopField)
PROJ_FIELDS = tuple(f.name.lower() for f in ProjField)


@dataclass(frozen=True)
class HardwareConfig:
    """The Verilog parameters of one build of ``snn_core`` (docs/hardware.md)."""

    n_max: int = 256  # neurons, inputs included
    syn_max: int = 16384  # weight words
    p_max: int = 8  # populations
    pr_max: int = 16  # projections
    d_max: int = 7  # largest delay
    tr_max: int = 1024  # STDP trace words
    weight_bits: int = 8
    state_bits: int = 16
    decay_bits: int = 12
    trace_bits: int = 8
    frac_bits: int = 6
    trace_frac_bits: int = 6
    stdp_frac_bits: int = 8
    a_bits: int = 24  # STDP amplitude width
    r_bits: int = 8  # refractory counter width
    in_depth: int = 256
    out_depth: int = 256
    # the core adds the delayed reset's inputs itself (population fields C1, C2; FEATURES
    # "delayed_reset"): no self-projections. Off on the FPGA boards (they are full)
    delayed_reset: bool = False

    def verilog_params(self) -> dict[str, int]:
        """``{parameter: value}`` of ``snn_core`` (``DELAYED_RESET`` only when on, so that
        the tops that do not take it build as before)."""
        on = {"DELAYED_RESET": 1} if self.delayed_reset else {}
        return {**on, "N_MAX": self.n_max, "SYN_MAX": self.syn_max, "P_MAX": self.p_max,
                "PR_MAX": self.pr_max, "D_MAX": self.d_max, "TR_MAX": self.tr_max,
                "W_BITS": self.weight_bits, "S_BITS": self.state_bits,
                "D_BITS": self.decay_bits, "T_BITS": self.trace_bits, "FRAC": self.frac_bits,
                "T_FRAC": self.trace_frac_bits, "STDP_FRAC": self.stdp_frac_bits,
                "A_BITS": self.a_bits, "R_BITS": self.r_bits, "IN_DEPTH": self.in_depth,
                "OUT_DEPTH": self.out_depth}

    def key(self) -> str:
        """A short hash naming this configuration (build caches)."""
        d = dataclasses.asdict(self)
        if not self.delayed_reset:  # the keys of builds without it stay as they were
            del d["delayed_reset"]
        text = json.dumps(d, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def for_network(cls, net: Network, **overrides) -> HardwareConfig:
        """The smallest configuration (sizes rounded up to powers of two, so that similar
        networks share one build) that holds ``net`` with its quantisation (default: the
        automatic one) as :func:`~snnkit.lowering.lower` gives it to the core (populations
        split where per-neuron parameters differ). A network with a delayed reset gets the
        ``delayed_reset`` feature (no self-projections) unless ``delayed_reset=False`` is
        given (then: delayed resets as self-projections)."""
        q = net.quantization or auto_quantization(net)
        dr = overrides.pop("delayed_reset", None)
        if dr is None:
            dr = any(p.neuron.reset == "delayed" for p in net.neuron_populations)
        low = lower(net, q, native_reset=bool(dr))
        hw = low.net
        words = sum(_pop(hw, p.source).size * _pop(hw, p.target).size for p in hw.projections)
        traces = sum(_pop(hw, p.source).size + _pop(hw, p.target).size
                     for p in hw.projections if p.stdp is not None)
        refr = max((int(np.max(p.neuron.refractory)) for p in net.neuron_populations),
                   default=0)
        amp = max((max(st.a_plus, st.a_minus) for st in (
            integer_stdp(hw, i, q) for i, p in enumerate(hw.projections) if p.stdp is not None)),
            default=0)
        sizes = {"n_max": _pow2(net.n_inputs + net.n_neurons, 64),
                 "syn_max": _pow2(words, 1024), "p_max": _pow2(len(hw.populations), 4),
                 "pr_max": _pow2(len(hw.projections), 4),
                 "d_max": _pow2(_delay(low) + 1, 4) - 1, "tr_max": _pow2(traces, 256),
                 "r_bits": max(8, int(refr).bit_length()),
                 "a_bits": max(cls.a_bits, int(amp).bit_length()), "delayed_reset": bool(dr)}
        widths = {k: getattr(q, k) for k in ("weight_bits", "state_bits", "decay_bits",
                                             "trace_bits", "frac_bits", "trace_frac_bits",
                                             "stdp_frac_bits")}
        return cls(**{**sizes, **widths, **overrides})


# The largest configuration built for each board (benchmarks/fpga_resources.py, "256 x 64k
# (target)"): placed, routed and timed on the iCE40UP5K; a yosys estimate on the xc7a35t.
CHECKED_CONFIG = HardwareConfig(n_max=256, syn_max=65536, p_max=4, pr_max=4, d_max=3,
                                tr_max=512)
BOARD_CONFIGS = {"ice40": CHECKED_CONFIG, "cmod_a7": CHECKED_CONFIG}
# what sizes the memories and the datapath (beyond the checked values a build may not fit),
# and the small tables and FIFOs (larger ones cost little, but are unchecked)
_MEMORY = ("n_max", "syn_max", "tr_max", "weight_bits", "state_bits", "decay_bits",
           "trace_bits", "a_bits", "r_bits")
_TABLES = ("p_max", "pr_max", "d_max", "in_depth", "out_depth")


def board_config(net: Network, board: str = "ice40") -> HardwareConfig:
    """:meth:`HardwareConfig.for_network` with the sizes of the configuration checked on
    ``board`` (:data:`BOARD_CONFIGS`), widths following ``net``: the board a network that
    fits is built into, so that every such network shares one build."""
    c = BOARD_CONFIGS[board]
    return HardwareConfig.for_network(net, **{k: getattr(c, k) for k in (
        "n_max", "syn_max", "p_max", "pr_max", "d_max", "tr_max", "in_depth", "out_depth",
        "delayed_reset")})


def board_fit(config: HardwareConfig) -> dict[str, tuple[list[str], list[str]]]:
    """For each board of ``snnkit build``: what of ``config`` exceeds the configuration
    checked on that board, as ``(memories and widths, tables)``; the first empty: it fits."""

    def over(c, keys):
        return [f"{k.upper()} {getattr(config, k):,} > {getattr(c, k):,}" for k in keys
                if getattr(config, k) > getattr(c, k)]

    return {board: (over(c, _MEMORY), over(c, _TABLES)) for board, c in BOARD_CONFIGS.items()}


def _pow2(n: int, least: int) -> int:
    return max(least, 1 << max(0, int(n) - 1).bit_length())


def _pop(net: Network, name: str):
    return net.population(name)


def _delay(low: Lowered) -> int:
    """The largest delay the core needs: the projections', and the history a delayed reset
    in the core reads (1 or 2 steps back)."""
    return max(low.net.max_delay, max(low.native.values(), default=0))


@dataclass
class CompileReport:
    """What :func:`compile` produced: sizes, memory use and estimated cycles per step."""

    config: HardwareConfig
    n_inputs: int
    n_neurons: int
    n_synapses: int
    weight_words: int
    trace_words: int
    memory_bits: dict[str, int]
    cycles_per_step: dict[str, int]  # "no spikes", "5% activity", "all spiking"
    proj_order: list[int]  # table entry k holds projection proj_order[k] of the core's network
    w_base: list[int]  # per projection of the core's network: its weight base address
    blocks: list[list[tuple]]  # per net projection: (w_base, source lo, hi, target lo, hi)
    # of each weight block (one, unless its populations were split: snnkit.lowering)
    split: str = ""  # how populations were split ("" when none was)
    resets: str = ""  # what the delayed resets' self-projections cost ("" when none)
    files: list[str] = field(default_factory=list)

    def matrix(self, words, i: int) -> np.ndarray:
        """Projection ``i``'s weights ``[target, source]`` from the weight memory ``words``
        (one element per word, as read back; blocks at ``W_BASE + s * size + t``)."""
        words = np.asarray(words)
        t_n = max(b[4] for b in self.blocks[i])
        s_n = max(b[2] for b in self.blocks[i])
        out = np.zeros((t_n, s_n), words.dtype)
        for base, slo, shi, tlo, thi in self.blocks[i]:
            n = (shi - slo) * (thi - tlo)
            out[tlo:thi, slo:shi] = words[base:base + n].reshape(shi - slo, thi - tlo).T
        return out

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["config_key"] = self.config.key()
        return d

    def __str__(self) -> str:
        c = self.config
        mem = ", ".join(f"{k} {v:,}" for k, v in self.memory_bits.items())
        cyc = ", ".join(f"{k}: {v:,}" for k, v in self.cycles_per_step.items())
        return "\n".join([
            (f"snn_core configuration {c.key()}: N_MAX={c.n_max} SYN_MAX={c.syn_max} "
            f"P_MAX={c.p_max} PR_MAX={c.pr_max} D_MAX={c.d_max} TR_MAX={c.tr_max} lanes=1"),
            (f"  widths: weights {c.weight_bits}, states {c.state_bits}, decays "
            f"{c.decay_bits}+1, traces {c.trace_bits} (frac {c.trace_frac_bits}); FRAC "
            f"{c.frac_bits} (only soft-bound STDP depends on it)"),
            (f"  network: {self.n_inputs} inputs, {self.n_neurons} neurons, "
            f"{self.n_synapses} synapses in {self.weight_words} weight words, "
            f"{self.trace_words} trace words"),
            *([f"  split for per-neuron parameters: {self.split}"] if self.split else []),
            *([f"  delayed resets: {self.resets}"] if self.resets else []),
            f"  memory bits: {mem} (total {sum(self.memory_bits.values()):,})",
            f"  estimated cycles per step: {cyc}",
        ])


# --------------------------------------------------------------------------- checks


def format_fields(net: Network) -> tuple[str, ...]:
    """The fields of ``net``'s quantisation the core is built for: the widths always; the
    trace format and amplitude bits with STDP; the fractional bits only with soft-bound
    STDP (everything else computes the same integers whatever the LSB stands for)."""
    stdp = [p.stdp for p in net.projections if p.stdp is not None]
    out = ("weight_bits", "state_bits", "decay_bits")
    if stdp:
        out += ("trace_bits", "trace_frac_bits", "stdp_frac_bits")
    if any(s.bounds == "soft" for s in stdp):
        out += ("frac_bits",)
    return out


def requirements(net: Network, c: HardwareConfig,
                 low: Lowered | None = None) -> dict[str, tuple[int, int]]:
    """``{limit: (needed by net, available in c)}`` for every size limit of one core, as
    :func:`lower` gives ``net`` to the core (``low``; computed when not given): populations
    split where per-neuron parameters differ, delayed resets as self-projections (unless
    ``c`` has the ``delayed_reset`` feature)."""
    low = low or lower(net, net.quantization or auto_quantization(net),
                       native_reset=c.delayed_reset)
    hw = low.net
    words = sum(_words(hw, p) for p in hw.projections)
    traces = sum(hw.population(p.source).size + hw.population(p.target).size
                 for p in hw.projections if p.stdp is not None)
    return {"neurons (inputs included)": (net.n_inputs + net.n_neurons, c.n_max),
            "populations": (len(hw.populations), c.p_max),
            "projections": (len(hw.projections), c.pr_max),
            "weight words": (words, c.syn_max), "STDP trace words": (traces, c.tr_max),
            "delay (steps)": (_delay(low), c.d_max)}


def _check_fit(net: Network, low: Lowered, c: HardwareConfig) -> None:
    check_kinds(net)
    q = net.quantization
    for name in format_fields(net):
        if getattr(q, name) != getattr(c, name):
            raise NetworkError(f"quantization.{name}: the network uses {getattr(q, name)} but "
                               f"the hardware is built for {getattr(c, name)}; quantise it to "
                               f"the hardware's format (snnkit.board_format.to_board, what "
                               f"Device.load and snnkit deploy do)")
    split = f" (after splitting {low.note()})" if low.split else ""
    resets = low.reset_note()
    for what, (n, cap) in requirements(net, c, low).items():
        notes = ([f"after splitting {low.note()}"] if low.split and what in (
            "populations", "projections", "STDP trace words") else [])
        notes += [f"with {resets}"] if resets and what in (
            "projections", "weight words", "delay (steps)") else []
        why = f" ({'; '.join(notes)})" if notes else ""
        if n > cap:
            raise NetworkError(f"network does not fit the hardware: {n} {what} needed{why}, "
                               f"{cap} available ({n - cap} too many)"
                               + (_conv_cost(net) if what == "weight words" else ""))
    if c.n_max > 65536:
        raise NetworkError(f"hardware: N_MAX {c.n_max} exceeds the 16-bit event index")
    for name, v in (("P_MAX", c.p_max), ("PR_MAX", c.pr_max)):
        if v > 255:
            raise NetworkError(f"hardware: {name} {v} exceeds 255, the most IDENTIFY reports"
                               f"{split}; use fewer populations / projections")


def check_kinds(net: Network) -> None:
    """Raise for what no core of any size takes (current inputs), before sizes are checked:
    a bigger board would not help.

    Raises
    ------
    NetworkError : names the population and what to do
    """
    for pop in net.populations:
        if pop.is_input and pop.encoding == "current":
            raise NetworkError(f"populations[{net.index_of(pop.name)}] ({pop.name}).encoding: "
                               f"current inputs are not supported by the hardware (it "
                               f"takes spikes); encode the input as spikes (snnkit.convert "
                               f"and snnkit convert do by default: input='spikes')")


def _conv_cost(net: Network) -> str:
    """What the convolutions cost in weight words, for the fit check's message."""
    parts = [f"{pr.name}: {pr.weight.size} shared weights -> {_words(net, pr):,} words"
             for pr in net.projections if pr.conv is not None]
    return ("; convolutions are expanded to one word per (source, target) pair (" +
            "; ".join(parts) + ")") if parts else ""


def _words(net: Network, pr) -> int:
    """Weight words of one projection: its [source, target] block."""
    return net.population(pr.source).size * net.population(pr.target).size


def _scalar(ip, name: str) -> int:
    """The one value of a table field (snnkit.lowering made it equal over the population)."""
    return _scalar_of(getattr(ip, name))


def _scalar_of(value) -> int:
    arr = np.asarray(value)
    return int(arr.flat[0]) if arr.size else 0


# --------------------------------------------------------------------------- tables


def _pop_table(net: Network, c: HardwareConfig, firsts: dict[int, tuple[int, int]]):
    q = net.quantization
    rows = []
    for p, pop in enumerate(net.populations):
        row = dict.fromkeys(POP_FIELDS, 0)
        row.update(offset=net.offset(pop.name), size=pop.size)
        if pop.is_input:
            row["flags"] = PopFlag.INPUT
        else:
            where = f"populations[{p}] ({pop.name}).neuron"
            ip = integer_neuron(net, pop, q)
            for k in ("alpha", "beta", "adapt_decay", "threshold", "v_reset", "v_init",
                      "adapt_plus", "refractory"):
                row[k] = _scalar(ip, k)
            if row["refractory"] >= 1 << c.r_bits:
                raise NetworkError(f"{where}.refractory: {row['refractory']} does not fit the "
                                   f"{c.r_bits}-bit refractory counter")
            row["flags"] = (PopFlag.SUBTRACT if ip.subtract else 0) | PopFlag.OUT_EN
            if ip.delayed:  # lower(native_reset=True) kept it: the core's fields C1, C2
                if not c.delayed_reset:
                    raise NetworkError(f"{where}.reset: 'delayed' needs a core with the "
                                       f"delayed_reset feature, or snnkit.lowering.lower")
                for k, v in zip(("c1", "c2"), delayed_reset_weights(ip, q)):
                    row[k] = _scalar_of(v)
                    if not -(1 << (c.state_bits - 1)) <= row[k] < 1 << (c.state_bits - 1):
                        raise NetworkError(f"{where}.reset: the delayed reset's {k} "
                                           f"{row[k]} does not fit {c.state_bits}-bit states")
            row["proj_first"], row["proj_count"] = firsts.get(p, (0, 0))
        rows.append(row)
    return rows


def _proj_tables(net: Network, c: HardwareConfig, learning: bool | None):
    """Projection table rows in target order, the weight image and the base addresses."""
    q = net.quantization
    order = sorted(range(len(net.projections)),
                   key=lambda i: net.index_of(net.projections[i].target))
    index = {p.name: i for i, p in enumerate(net.populations)}
    w_base, words, traces = [0] * len(order), 0, 0
    for i, pr in enumerate(net.projections):
        w_base[i] = words
        words += _words(net, pr)
    image = np.zeros(max(words, 1), np.int64)
    rows = []
    for i in order:
        pr = net.projections[i]
        s, t = net.population(pr.source).size, net.population(pr.target).size
        w = integer_weights(net, i, q)  # [target, source]; a conv's kernel, expanded:
        if pr.conv is not None:
            w = pr.conv.dense(w)
        plastic = np.zeros_like(w, bool)
        row = dict.fromkeys(PROJ_FIELDS, 0)
        row.update(src=index[pr.source], tgt=index[pr.target], delay=pr.delay, w_base=w_base[i])
        if pr.stdp is not None:
            st = integer_stdp(net, i, q)
            where = f"projections[{i}] ({pr.name}).stdp"
            for k in ("a_plus", "a_minus"):
                if getattr(st, k) >= 1 << c.a_bits:
                    raise NetworkError(f"{where}.{k}: {getattr(pr.stdp, k)} is "
                                       f"{getattr(st, k)} LSB, more than the {c.a_bits}-bit "
                                       f"amplitude register holds (a_bits="
                                       f"{int(getattr(st, k)).bit_length()} in the "
                                       f"HardwareConfig holds it)")
            on = pr.learns(learning)
            row.update(flags=(ProjFlag.STDP if on else 0)
                       | (ProjFlag.NEAREST if st.nearest else 0)
                       | (ProjFlag.SOFT if st.soft else 0), a_plus=st.a_plus, a_minus=st.a_minus,
                       pre_decay=st.pre_decay, post_decay=st.post_decay, w_min=st.w_min,
                       w_max=st.w_max, tr_base=traces)
            traces += s + t
            plastic = pr.connections() & (pr.plastic_mask if pr.plastic_mask is not None
                                          else True)
        mask = (1 << c.weight_bits) - 1
        word = (w.T & mask) | (plastic.T.astype(np.int64) << c.weight_bits)  # [source, target]
        image[w_base[i]:w_base[i] + s * t] = word.reshape(-1)
        rows.append(row)
    return rows, image[:words], order, w_base, traces


def _firsts(net: Network, order: list[int]) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for k, i in enumerate(order):
        p = net.index_of(net.projections[i].target)
        first, count = out.get(p, (k, 0))
        out[p] = (first, count + 1)
    return out


# --------------------------------------------------------------------------- estimates


def estimate_cycles(net: Network, activity, steady: bool = True,
                    delayed_reset: bool = False) -> int:
    """Cycles of one step of the sequencer (snn_seq) when a fraction ``activity`` (one number,
    or ``{population: fraction}``) of each population spikes, events rounded to whole spikes.

    Neurons are pipelined: one cycle per arriving event, at least 3 per neuron; per neuron
    population (per run of equal parameters: :mod:`snnkit.lowering`) 8 cycles to load its
    parameters from the table RAM (11 on a core with ``delayed_reset``: C1, V_INIT, C2; its
    delayed resets cost nothing else, their history reads ride on each neuron's first two
    items), one per incoming
    projection + 2 (their event counts come from a block RAM a cycle late) and a 9-cycle
    drain; per population one cycle waiting for its event count before the inputs. STDP, per
    plastic projection: 6 cycles to load its parameters, 4 per trace, 10 per synapse of an
    arriving source's row or a spiking target's column when at most half of each spike, else
    10 per synapse (a dense pass, as is the first learning step after a weight write:
    ``steady=False``).
    """
    low = lower(net, net.quantization or auto_quantization(net), native_reset=delayed_reset)
    net = low.net
    load = 11 if delayed_reset else 8  # + C1, V_INIT (read, unused), C2
    rate = activity if isinstance(activity, dict) else {p: activity for p in low.runs}
    ev = {p.name: int(round(rate.get(low.origin[p.name], 0.0) * p.size))
          for p in net.populations}
    # step start, a count read per population (S_IN0), table walks, slot advance
    cycles = 4 + 3 * len(net.populations)
    cycles += sum(5 * ev[p.name] + 1 for p in net.inputs)  # forget old inputs, take new ones
    for pop in net.neuron_populations:
        inc = net.incoming(pop.name)
        events = sum(ev[p.source] for p in inc)
        # parameter load (8), list of projections with events (one per incoming
        # projection + 2), one item per cycle: max(events, 3) per neuron (the three decays
        # share one multiplier), the pipeline drain (9: the event word and the weight are
        # registered after their reads, the update takes two cycles)
        cycles += load + len(inc) + 2 + pop.size * max(events, 3) + 9
    cycles += len(net.projections)
    for pr in net.projections:
        if pr.stdp is not None and pr.stdp.enabled:
            s, t = net.population(pr.source).size, net.population(pr.target).size
            pre, post = ev[pr.source], ev[pr.target]
            # parameter load, the traces (4 cycles each: the word is registered after its
            # read), then event driven when at most half the sources arrive and half the
            # targets spike: a row per arriving source (5 cycles to fetch it and its trace, 10
            # per synapse: read, wait, register, the product unit, write), a column per
            # spiking target (3 + 10 per synapse), +1 to end each list
            if 2 * pre <= s and 2 * post <= t and steady:
                cycles += 6 + 4 * (s + t) + pre * (5 + 10 * t) + 1 + post * (3 + 10 * s) + 1
            else:  # dense: every synapse (at high activity, or the first learning step)
                cycles += 6 + 4 * (s + t) + t * (3 + 10 * s)
    return cycles


def memory_bits(c: HardwareConfig) -> dict[str, int]:
    """Bits of each of the core's memories in configuration ``c`` (without the FPGA's
    rounding to its block sizes)."""
    n_aw = max(1, (c.n_max - 1).bit_length())
    return {"weights": c.syn_max * (c.weight_bits + 1),
            "neuron state": c.n_max * (3 * c.state_bits + c.r_bits),
            "biases": c.n_max * c.state_bits,
            "events": (c.d_max + 1) * c.n_max * (n_aw + 1),
            "history": (c.d_max + 1) * c.n_max,
            "traces": c.tr_max * 2 * c.trace_bits,
            "fifos": 32 * (c.in_depth + c.out_depth),
            "tables": 32 * TABLE_STRIDE * (c.p_max + c.pr_max)}


# --------------------------------------------------------------------------- writing


def _hex(values, bits: int = 32) -> str:
    mask = (1 << bits) - 1
    digits = (bits + 3) // 4
    return "".join(f"{int(v) & mask:0{digits}x}\n" for v in values)


def build_images(net: Network, config: HardwareConfig | None = None,
                 learning: bool | None = None):
    """Compute everything :func:`compile` writes, without writing.

    Returns
    -------
    (report, images) with images ``{file name: text}``

    Raises
    ------
    NetworkError : the network does not fit ``config`` (the message says what and by how much)
    """
    if not isinstance(net, Network):
        raise NetworkError(f"compile: expected a snnkit.Network, got {type(net).__name__}")
    if net.quantization is None:
        net, _ = quantize(net)
    if not net.neuron_populations:
        raise NetworkError("network: has no neuron population to compile")
    c = config or HardwareConfig.for_network(net)
    low = lower(net, native_reset=c.delayed_reset)
    hw = low.net  # split where per-neuron parameters differ, delayed resets as synapses
    # (or, with c.delayed_reset, kept: the population fields C1, C2)
    _check_fit(net, low, c)
    words = sum(_words(hw, p) for p in hw.projections)
    proj_rows, image, order, w_base, traces = _proj_tables(hw, c, learning)
    pop_rows = _pop_table(hw, c, _firsts(hw, order))
    pop_words = _flatten(pop_rows, PopField)
    proj_words = _flatten(proj_rows, ProjField)
    blocks = [[(w_base[pt.index], *pt.src, *pt.tgt) for pt in parts] for parts in low.parts]
    report = CompileReport(
        config=c, n_inputs=net.n_inputs, n_neurons=net.n_neurons, n_synapses=net.n_synapses,
        weight_words=words, trace_words=traces, memory_bits=memory_bits(c),
        cycles_per_step={k: estimate_cycles(hw, a, delayed_reset=c.delayed_reset) for k, a in
                         (("no spikes", 0.0), ("5% activity", 0.05), ("all spiking", 1.0))},
        proj_order=order, w_base=w_base, blocks=blocks, split=low.note(),
        resets=low.reset_note())
    images = {"pop.hex": _hex(pop_words), "proj.hex": _hex(proj_words),
              "weights.hex": _hex(image, c.weight_bits + 1) or "0\n",
              "bias.hex": _hex(_biases(net), c.state_bits),
              "regs.hex": _hex([len(hw.populations), len(hw.projections), words]),
              "params.vh": _params_vh(c)}
    return report, images


def _biases(net: Network) -> np.ndarray:
    """Every neuron's integer bias by global index (0 for inputs): the image of region BIAS."""
    out = np.zeros(net.n_inputs + net.n_neurons, np.int64)
    for pop in net.neuron_populations:
        off = net.offset(pop.name)
        out[off:off + pop.size] = integer_neuron(net, pop, net.quantization).bias
    return out


def _flatten(rows, fields) -> list[int]:
    """Table rows as words: TABLE_STRIDE per entry, field f (PopField / ProjField) at word f
    (unused words 0)."""
    out = []
    for r in rows:
        words = [0] * TABLE_STRIDE
        for f in fields:
            words[f] = int(r[f.name.lower()])
        out += words
    return out


def _params_vh(c: HardwareConfig) -> str:
    lines = ["// snn_core parameters written by snnkit.compile; configuration " + c.key()]
    lines += [f"`define SNN_{k} {v}" for k, v in c.verilog_params().items()]
    return "\n".join(lines) + "\n"


def compile(net: Network, out_dir, config: HardwareConfig | None = None,
            learning: bool | None = None) -> CompileReport:
    """Write the core's parameters, memory images and report for ``net`` into ``out_dir``.

    Parameters
    ----------
    net : the network (quantised with :func:`snnkit.quantize` first if it has no format)
    out_dir : directory to write (created)
    config : the hardware to fit; default the smallest that holds the network
    learning : override every projection's ``stdp.enabled`` in the image

    Returns
    -------
    :class:`CompileReport` (also written as report.json and report.txt)

    Raises
    ------
    NetworkError : the network does not fit (what, and by how much), or uses a feature the
        hardware lacks (current inputs, per-neuron parameters)
    """
    report, images = build_images(net, config, learning)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in images.items():
        (out / name).write_text(text)
    report.files = sorted(images) + ["report.json", "report.txt"]
    (out / "report.json").write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    (out / "report.txt").write_text(str(report) + "\n")
    return report
