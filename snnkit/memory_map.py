"""The core's memory map, written once: host-bus regions, registers and their bits, the
population / projection table fields and flags, and the UART decoder's region table.

The RTL reads the same numbers from ``hdl/snn_map.vh``, a Verilog header generated from this
module together with the link constants of :mod:`snnkit.protocol` (opcodes, error codes,
SYNC). Regenerate it after an edit here::

    python -m snnkit.map_header            # writes hdl/snn_map.vh
    python -m snnkit.map_header --check    # exit 1 when the committed header is stale

tests/test_memory_map.py fails while the committed header differs from :func:`verilog_header`.
Meanings of the registers and fields: docs/hardware.md.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

from . import protocol as p
from .hardware_files import HDL
from .protocol import Region

HEADER_PATH = HDL / "snn_map.vh"

# --------------------------------------------------------------------------- the core's bus

ADDR_W = 24  # host bus word-address width
REGION_SHIFT = 20  # the core's region is host_addr[23:20], the offset host_addr[19:0]


class CoreRegion(IntEnum):
    """The core's address regions (``host_addr[23:20]``)."""

    REGS = 0x0  # registers and the two tables
    STATE = 0x1  # neuron state, STATE_STRIDE words per neuron (debug read / write)
    WEIGHT = 0x2  # weights: bit 31 plastic, [30:0] the weight sign-extended
    TRACE = 0x3  # STDP traces (debug)
    BIAS = 0x6  # per-neuron bias: word g is neuron g's, signed S_BITS (0x4, 0x5: multi-core)


def core_address(region: CoreRegion, offset: int = 0) -> int:
    """The host-bus word address of ``offset`` in ``region``."""
    return (int(region) << REGION_SHIFT) | int(offset)


class Reg(IntEnum):
    """Word offsets of the registers in region REGS."""

    ID = 0x000  # magic MAGIC
    VERSION = 0x001  # CORE_VERSION
    N_MAX = 0x002
    SYN_MAX = 0x003
    SIZES = 0x004  # {P_MAX, PR_MAX, D_MAX, lanes}, 8 bits each
    WIDTHS = 0x005  # {W_BITS, S_BITS, D_BITS, T_BITS}
    FRACS = 0x006  # {FRAC, T_FRAC, STDP_FRAC, A_BITS}
    FEATURES = 0x007  # bit k: FEATURES[k]
    TR_MAX = 0x008
    FIFOS = 0x009  # {IN_DEPTH[15:0], OUT_DEPTH[15:0]}
    R_BITS = 0x00A
    CTRL = 0x010  # write: Ctrl bits
    STEPS = 0x011  # steps of the next RUN
    LEARN = 0x012  # bit 0: learning on
    STATUS = 0x013  # Status bits
    STEP_COUNT = 0x014  # steps since RESET_STATE
    CYCLES_LO = 0x015  # cycles spent running steps, low word
    CYCLES_HI = 0x016  # ... high word
    SYN_EVENTS = 0x017  # weights read while routing spikes
    STEPS_LEFT = 0x018  # steps left in the current RUN
    N_POP = 0x019  # populations in use
    N_PROJ = 0x01A  # projections in use
    IN_FIFO = 0x020  # push: an input index, or FIFO_MARK (end of step)
    IN_LEVEL = 0x021  # words in the input FIFO
    OUT_FIFO = 0x022  # pop: FIFO_MARK | step[14:0] << 16 | index
    OUT_LEVEL = 0x023  # words in the output FIFO


IDENT_WORDS = Reg.R_BITS - Reg.ID + 1  # the identify block: ID .. R_BITS
CTRL_WORDS = Reg.N_PROJ - Reg.CTRL + 1  # CTRL .. N_PROJ
COUNTER_WORDS = Reg.SYN_EVENTS - Reg.STEP_COUNT + 1  # STEP_COUNT .. SYN_EVENTS
FIFO_WORDS = Reg.OUT_LEVEL - Reg.IN_FIFO + 1  # IN_FIFO .. OUT_LEVEL
MAGIC = 0x534E4E31  # "SNN1"
CORE_VERSION = 0x00020000  # 2: the bias is per neuron (region BIAS), not a table field
# (fields C1, C2 exist on a core whose FEATURES has "delayed_reset": the bit says it, so the
# version stays, and cores built without the feature are unchanged)
FEATURES = ("stdp", "soft_bounds", "adaptive_threshold", "delays", "nearest_rule",
            "neuron_bias", "delayed_reset")  # bit k
# the features a core has by its build's parameters (snn_core's DELAYED_RESET); every other
# one every core has
OPTIONAL_FEATURES = ("delayed_reset",)


class Ctrl(IntFlag):
    """Bits of a CTRL write."""

    RUN = 1 << 0  # run STEPS steps
    RESET_STATE = 1 << 1  # v = v_init, everything else 0, step count 0


class Status(IntFlag):
    """Bits of STATUS."""

    BUSY = 1 << 0  # running steps or the reset pass
    DONE = 1 << 1  # a RUN finished (cleared by RUN)
    INPUT_ERROR = 1 << 2  # sticky: an input index that is no input neuron, or repeated
    WAITING = 1 << 3  # waiting for an end-of-step marker in the input FIFO
    OUT_FULL = 1 << 4  # the output FIFO is full (the core stalls)


FIFO_MARK = 1 << 31  # IN_FIFO: end-of-step marker; OUT_FIFO: the word is valid
PLASTIC = 1 << 31  # a WEIGHT word: this synapse learns

# --------------------------------------------------------------------------- tables

POP_TABLE = 0x100  # POP[p] field f at POP_TABLE + TABLE_STRIDE * p + f (region REGS)
PROJ_TABLE = 0x400  # PROJ[k] field f at PROJ_TABLE + TABLE_STRIDE * k + f
TABLE_STRIDE = 16  # words per table entry


class PopField(IntEnum):
    """Fields of a population table entry."""

    OFFSET = 0  # global index of neuron 0
    SIZE = 1
    FLAGS = 2  # PopFlag
    REFRACTORY = 3
    ALPHA = 4  # decays: unsigned, D_BITS + 1 bits
    BETA = 5
    ADAPT_DECAY = 6
    THRESHOLD = 7  # signed, S_BITS: THRESHOLD .. ADAPT_PLUS (the bias is per neuron: BIAS)
    V_RESET = 8
    C1 = 9  # signed, S_BITS: the delayed reset's input one step after a spike (a core with
    # "delayed_reset"; the population's bias in core version 1)
    V_INIT = 10
    ADAPT_PLUS = 11
    PROJ_FIRST = 12  # incoming projections: table entries PROJ_FIRST .. + PROJ_COUNT - 1
    PROJ_COUNT = 13
    C2 = 14  # signed, S_BITS: ... two steps after a spike ("delayed_reset")


class PopFlag(IntFlag):
    """Bits of a population's FLAGS."""

    INPUT = 1 << 0  # an input population
    SUBTRACT = 1 << 1  # reset by subtraction (else to V_RESET)
    OUT_EN = 1 << 2  # its spikes go to the output FIFO


class ProjField(IntEnum):
    """Fields of a projection table entry."""

    SRC = 0  # population index
    TGT = 1
    DELAY = 2  # 0 .. D_MAX
    W_BASE = 3  # weight of source s to target t at W_BASE + s * SIZE[TGT] + t
    FLAGS = 4  # ProjFlag
    A_PLUS = 5  # unsigned, A_BITS
    A_MINUS = 6
    PRE_DECAY = 7  # unsigned, D_BITS + 1 bits
    POST_DECAY = 8
    W_MIN = 9  # signed, W_BITS
    W_MAX = 10
    TR_BASE = 11  # pre traces at TR_BASE + s, post traces at TR_BASE + SIZE[SRC] + t


class ProjFlag(IntFlag):
    """Bits of a projection's FLAGS."""

    STDP = 1 << 0  # this projection learns
    NEAREST = 1 << 1  # nearest-spike traces
    SOFT = 1 << 2  # soft bounds


SIGNED_POP_FIELDS = (PopField.THRESHOLD, PopField.V_RESET, PopField.C1, PopField.V_INIT,
                     PopField.ADAPT_PLUS, PopField.C2)  # stored sign-extended
SIGNED_PROJ_FIELDS = (ProjField.W_MIN, ProjField.W_MAX)


class StateField(IntEnum):
    """Words of one neuron in region STATE (at STATE_STRIDE * neuron + field)."""

    V = 0
    I = 1  # noqa: E741 (the synaptic current's name in docs/fixed-point.md)
    REFRACTORY = 2
    THETA = 3


STATE_STRIDE = 4

# --------------------------------------------------------------------------- many cores


class MultiReg(IntEnum):
    """Registers the multi-core design (hdl/snn_multi.v) adds in region REGS."""

    CORES = 0x00B  # identify word: cores in the design
    CORE_SEL = 0x01B  # the core the tables, N_POP, N_PROJ and regions 1-3 address
    N_WAVES = 0x02F  # waves per step
    WAVE = 0x030  # + k: core k's {enabled (bit 4), wave [3:0]}


class MultiRegion(IntEnum):
    """Address regions the multi-core design adds (``host_addr[23:20]``)."""

    ROUTE = 0x4  # the spike router's route table (write only)
    INMAP = 0x5  # each core's index of each network input (write only)


MULTI_LINK_BASE = {  # protocol region -> its first word on snn_multi's bus
    Region.ROUTE: core_address(MultiRegion.ROUTE), Region.INMAP: core_address(MultiRegion.INMAP),
    Region.WAVES: core_address(CoreRegion.REGS, MultiReg.N_WAVES)}


# --------------------------------------------------------------------------- UART regions

LINK_COUNTERS = 4  # region LINK: the decoder's frames, CRC errors, NACKs, replays
LINK_BASE = {  # protocol region -> its first word on the core's bus (LINK: the decoder's own)
    Region.IDENT: core_address(CoreRegion.REGS, Reg.ID),
    Region.CTRL: core_address(CoreRegion.REGS, Reg.CTRL),
    Region.POP: core_address(CoreRegion.REGS, POP_TABLE),
    Region.PROJ: core_address(CoreRegion.REGS, PROJ_TABLE),
    Region.STATE: core_address(CoreRegion.STATE),
    Region.WEIGHT: core_address(CoreRegion.WEIGHT),
    Region.TRACE: core_address(CoreRegion.TRACE),
    Region.BIAS: core_address(CoreRegion.BIAS),
    Region.COUNTER: core_address(CoreRegion.REGS, Reg.STEP_COUNT),
    Region.FIFO: core_address(CoreRegion.REGS, Reg.IN_FIFO),
}
LINK_WRITABLE = (Region.CTRL, Region.POP, Region.PROJ, Region.STATE, Region.WEIGHT,
                 Region.FIFO, Region.BIAS)
# words per region: (factor, the core size it multiplies: N, SYN, P, PR, TR, or None)
LINK_SIZE = {Region.IDENT: (IDENT_WORDS, None), Region.CTRL: (CTRL_WORDS, None),
             Region.POP: (TABLE_STRIDE, "P"), Region.PROJ: (TABLE_STRIDE, "PR"),
             Region.STATE: (STATE_STRIDE, "N"), Region.WEIGHT: (1, "SYN"),
             Region.TRACE: (1, "TR"), Region.COUNTER: (COUNTER_WORDS, None),
             Region.LINK: (LINK_COUNTERS, None), Region.FIFO: (FIFO_WORDS, None),
             Region.BIAS: (1, "N")}


def base_features() -> int:
    """The FEATURES word of a core built without its optional features."""
    return sum(1 << k for k, f in enumerate(FEATURES) if f not in OPTIONAL_FEATURES)


def link_offset(region: Region, address: int) -> int:
    """The word offset in protocol ``region`` of the core's bus ``address``."""
    return int(address) - LINK_BASE[region]


def link_region_sizes(config) -> dict[Region, int]:
    """Words per protocol region of a core with ``config``
    (:class:`snnkit.compiler.HardwareConfig`), as the board's IDENTIFY reports them."""
    size = {"N": config.n_max, "SYN": config.syn_max, "P": config.p_max, "PR": config.pr_max,
            "TR": config.tr_max}
    return {r: k * (size[n] if n else 1) for r, (k, n) in LINK_SIZE.items()}


# --------------------------------------------------------------------------- the header


def _macros() -> list[tuple[str, str, str]]:
    """(name, Verilog value, comment) of every define, in header order; a blank name is a
    section comment."""
    m: list[tuple[str, str, str]] = [("", "", "the core's host bus (docs/hardware.md)")]
    m.append(("SNN_ADDR_W", str(ADDR_W), "host bus word-address width"))
    m += [(f"SNN_REGION_{r.name}", f"4'h{r.value:X}", "host_addr[23:20]") for r in CoreRegion]
    m += [(f"SNN_REG_{r.name}", f"'h{r.value:03X}", "word offset in region REGS")
          for r in Reg]
    m += [("SNN_POP_TABLE", f"'h{POP_TABLE:03X}", "POP[p] field f: + TABLE_STRIDE * p + f"),
          ("SNN_PROJ_TABLE", f"'h{PROJ_TABLE:03X}", "PROJ[k] field f: + TABLE_STRIDE * k + f"),
          ("SNN_TABLE_STRIDE", str(TABLE_STRIDE), "words per table entry"),
          ("SNN_STATE_STRIDE", str(STATE_STRIDE), "words per neuron in region STATE"),
          ("SNN_MAGIC", f"32'h{MAGIC:08X}", "identify word ID"),
          ("SNN_CORE_VERSION", f"32'h{CORE_VERSION:08X}", "identify word VERSION"),
          ("SNN_FEATURES", f"32'h{base_features():08X}",
           "identify word FEATURES: those every core has")]
    m += [(f"SNN_FEATURE_{f.upper()}", f"32'h{1 << FEATURES.index(f):08X}",
           "identify word FEATURES: an optional feature's bit") for f in OPTIONAL_FEATURES]
    m += [("SNN_FIFO_MARK_BIT", str(FIFO_MARK.bit_length() - 1),
           "IN_FIFO end-of-step marker, OUT_FIFO valid"),
          ("SNN_PLASTIC_BIT", str(PLASTIC.bit_length() - 1), "a WEIGHT word: plastic")]
    m += [(f"SNN_CTRL_{f.name}_BIT", str(f.value.bit_length() - 1), "bit of a CTRL write")
          for f in Ctrl]
    m += [(f"SNN_STATUS_{f.name}_BIT", str(f.value.bit_length() - 1), "bit of STATUS")
          for f in Status]
    m.append(("", "", "the multi-core design (hdl/snn_multi.v)"))
    m += [(f"SNN_MREG_{r.name}", f"'h{r.value:03X}", "word offset in region REGS")
          for r in MultiReg]
    m += [(f"SNN_REGION_{r.name}", f"4'h{r.value:X}", "host_addr[23:20]") for r in MultiRegion]
    m.append(("", "", "table fields (4 bits: the word in the entry) and flag bits"))
    m += [(f"SNN_POP_{f.name}", f"4'd{f.value}", "population field") for f in PopField]
    m.append(("SNN_POP_SIGNED", f"16'h{sum(1 << f for f in SIGNED_POP_FIELDS):04X}",
              "bit f: population field f is signed"))
    m += [(f"SNN_POP_FLAG_{f.name}_BIT", str(f.value.bit_length() - 1),
           "bit of a population's FLAGS") for f in PopFlag]
    m += [(f"SNN_PROJ_{f.name}", f"4'd{f.value}", "projection field") for f in ProjField]
    m.append(("SNN_PROJ_SIGNED", f"16'h{sum(1 << f for f in SIGNED_PROJ_FIELDS):04X}",
              "bit f: projection field f is signed"))
    m += [(f"SNN_PROJ_FLAG_{f.name}_BIT", str(f.value.bit_length() - 1),
           "bit of a projection's FLAGS") for f in ProjFlag]
    m += [(f"SNN_STATE_{f.name}", f"2'd{f.value}", "word of a neuron in region STATE")
          for f in StateField]
    m.append(("", "", "the UART link (docs/uart-protocol.md, snnkit/protocol.py)"))
    m += [("SNN_SYNC", f"8'h{p.SYNC:02X}", "first byte of every frame"),
          ("SNN_PROTOCOL_VERSION", f"8'd{p.PROTOCOL_VERSION}", "IDENTIFY's version byte"),
          ("SNN_IDLE_BITS", str(p.IDLE_BITS), "silent bit periods that drop a partial frame"),
          ("SNN_N_REGIONS", str(p.N_REGIONS), "IDENTIFY's region count (a byte)"),
          ("SNN_END_OF_STREAM", f"16'h{p.END_OF_STREAM:04X}", "count that ends a RUN stream"),
          ("SNN_ABORT", f"16'h{p.ABORT:04X}", "count that aborts it (then the error code)")]
    m += [(f"SNN_OP_{o.name}", f"8'h{o.value:02X}", "opcode") for o in p.Op]
    for e in p.ErrorCode:
        if e.value >= 16:
            raise ValueError(f"error code {e.name} = {e.value}: the decoder keeps 4 bits")
    m += [(f"SNN_ERR_{e.name}", f"4'd{e.value}", "NACK error code") for e in p.ErrorCode]
    m += [(f"SNN_LINK_{r.name}", f"4'd{r.value}", "protocol region") for r in Region]
    bases = ", ".join(f"32'h{LINK_BASE.get(r, 0):X}" for r in reversed(range(p.N_REGIONS)))
    m.append(("SNN_LINK_BASES", "{" + bases + "}",
              "region r's first word on the core's bus: bits 32r +: 32"))
    def size(r: int) -> str:
        k, n = LINK_SIZE.get(r, (0, None))
        return f"32'd{k}" if n is None else (f"({n})" if k == 1 else f"32'd{k} * ({n})")

    sizes = ", ".join(size(r) for r in reversed(range(p.N_REGIONS)))
    m.append(("SNN_LINK_SIZES(N, SYN, P, PR, TR)", "{" + sizes + "}",
              "region r's words, given the core's sizes as 32-bit values"))
    m.append(("SNN_LINK_WRITABLE", f"16'h{sum(1 << r for r in LINK_WRITABLE):04X}",
              "bit r: region r accepts writes"))
    return m


def verilog_header() -> str:
    """The text of ``hdl/snn_map.vh``: every constant of this module as a Verilog define."""
    lines = ["// The core's memory map and the UART link's constants, as Verilog defines.",
             "// GENERATED from snnkit/memory_map.py: do not edit; regenerate with",
             "//     python -m snnkit.map_header",
             "// (tests/test_memory_map.py checks that this file is current).",
             "`ifndef SNN_MAP_VH", "`define SNN_MAP_VH"]
    for name, value, comment in _macros():
        if not name:
            lines += ["", f"// ---- {comment}"]
        elif len(value) > 40:
            lines += [f"// {comment}", f"`define {name} {value}"]
        else:
            lines.append(f"`define {name:<28} {value:<12} // {comment}")
    return "\n".join(lines + ["", "`endif", ""])
