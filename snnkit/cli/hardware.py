"""``snnkit compile`` and ``snnkit build``: a network file into the core's parameters and
memory images, or into an FPGA bitstream / project."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from ..board_format import board_quantization, format_line, to_board
from ..build import BOARDS, build
from ..compiler import BOARD_CONFIGS, HardwareConfig, board_fit, compile
from ..ecp5 import build_board
from ..fpga_tools import BuildError
from ..multicore import compile_multi
from ..quantize import quantize
from .common import (
    UsageError,
    add_net_args,
    add_size_args,
    check_cores,
    check_int,
    check_positive,
    load_net,
    output_dir,
    say,
    sizes,
)


def _quantized(args):
    net = load_net(args)
    if net.quantization is None:
        net, report = quantize(net)
        say(f"quantisation (automatic format):\n{report}")
    return net


def register_compile(sub) -> None:
    p = sub.add_parser("compile", help="compile a network into Verilog parameters and memory "
                       "images", description="Compile a network for the Verilog core: "
                       "params.vh, $readmemh images and a report (memory, cycles per step, "
                       "the boards it fits).")
    add_net_args(p)
    p.add_argument("-o", "--out", required=True, help="output folder (made if missing)")
    add_size_args(p)
    p.add_argument("--cores", type=int, default=1,
                   help="partition over K cores of the multi-core design (per core: the "
                        "standard core, or the sizes given)")
    p.add_argument("--allocator", default="metis", choices=("metis", "in_order"),
                   help="with --cores: how neurons are placed on cores")
    p.set_defaults(func=run_compile)


def run_compile(args: argparse.Namespace) -> int:
    """Compile, print the report and the boards it fits; return the exit status 0."""
    check_cores("--cores", args.cores)
    config_sizes = sizes(args)
    net = _quantized(args)
    out = output_dir(args.out, "--out")
    if args.cores > 1:  # each core's images and the router's tables (snnkit.multicore)
        widths = {k: getattr(net.quantization, k) for k in (
            "weight_bits", "state_bits", "decay_bits", "trace_bits", "frac_bits",
            "trace_frac_bits", "stdp_frac_bits")}
        compile_multi(net, out, args.cores, HardwareConfig(**widths, **config_sizes),
                      args.allocator)
        say(Path(out, "report.txt").read_text().rstrip("\n"))
        return 0
    report = compile(net, out, HardwareConfig.for_network(net, **config_sizes))
    say(str(report))
    say_fit(report.config)
    return 0


def say_fit(config: HardwareConfig) -> None:
    """Print the boards whose checked configuration holds ``config``; warn when none does."""
    fit = board_fit(config)
    good = [b for b, (memory, _) in fit.items() if not memory]
    if good:
        tables = sorted({x for b in good for x in fit[b][1]})
        say("  fits: " + ", ".join(f"{b} ({BOARDS[b].title})" for b in good)
            + (f"; its tables are larger than in the checked build ({', '.join(tables)}): "
               f"the build's report confirms" if tables else "")
            + "; snnkit build --board " + "|".join(good))
        return
    over = sorted({x for memory, _ in fit.values() for x in memory})
    c = next(iter(BOARD_CONFIGS.values()))
    warnings.warn(f"this network is larger than every board's checked configuration "
                  f"({', '.join(fit)}: checked up to {c.n_max} neurons, {c.syn_max:,} weight "
                  f"words, {c.tr_max} trace words, {c.weight_bits}-bit weights, "
                  f"{c.state_bits}-bit states): {', '.join(over)}. It runs in the simulators, "
                  f"and on an emulated board of its size; snnkit build refuses it where the "
                  f"memories cannot hold it, and otherwise leaves it to place and route.",
                  stacklevel=2)


def register_build(sub) -> None:
    p = sub.add_parser("build", help="build an FPGA bitstream / project for a network",
                       description="Build an FPGA bitstream (iCE40, open-source tools) or a "
                                   "Vivado project (CMOD A7) for a network.")
    add_net_args(p)
    p.add_argument("--board", required=True, choices=sorted(BOARDS),
                   help="ice40: iCEBreaker bitstream; cmod_a7: Vivado project + estimate; "
                        "ulx3s: ECP5 bitstream of --cores cores")
    p.add_argument("-o", "--out", required=True, help="build folder (made if missing)")
    p.add_argument("--clock", type=float, default=None,
                   help="core clock in MHz (default 24 for ice40, 50 for cmod_a7 and ulx3s)")
    p.add_argument("--baud", type=int, default=1_000_000, choices=(1_000_000, 3_000_000),
                   help="UART bit rate (1 Mbaud: the protocol default; the rates snnkit "
                        "deploy / run speak)")
    p.add_argument("--no-bake", action="store_true",
                   help="do not put the network into the bitstream (deploy it over UART)")
    p.add_argument("--seeds", type=int, default=3,
                   help="ice40, ulx3s: placement seeds to try until one meets the clock "
                        "(default 3; each is a place and route)")
    p.add_argument("--cores", type=int, default=None,
                   help="ulx3s: cores in the design (a power of two; default 4; the other "
                        "boards hold one core)")
    p.add_argument("--allow-timing-fail", action="store_true",
                   help="exit 0 when place and route misses the clock (the report warns); "
                        "by default that build fails (exit 1), its files kept to inspect")
    add_size_args(p)
    p.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    """Build, print the report, return the exit status 0 (a BuildError when timing is not
    met, unless ``--allow-timing-fail``)."""
    check_int("--seeds", args.seeds, 1)
    check_positive("--clock", args.clock, "MHz")
    if args.cores is not None and args.board != "ulx3s":
        raise UsageError(f"--cores: --board {args.board} holds one core; the multi-core "
                         f"design is --board ulx3s (or snnkit compile --cores K)")
    args.cores = 4 if args.cores is None else args.cores
    check_cores("--cores", args.cores)
    net = load_net(args)
    out = output_dir(args.out, "--out")
    BOARDS[args.board].require_tools()  # a missing tool: refused before anything is written
    if args.board == "ulx3s":  # per core: the standard core with 64k weight words
        config = HardwareConfig(**{"syn_max": 65536, **sizes(args)})
    else:  # the FPGA boards' cores have no native delayed reset (build.build): sized so
        config = HardwareConfig.for_network(net, delayed_reset=False, **sizes(args))
    # the network in the board's format; refused here, before anything is written, if it
    # cannot fit one core
    if args.board == "ulx3s":
        net, report = quantize(net, board_quantization(net, config))
    else:
        fit = to_board(net, config)
        net, report = fit.net, fit.quantization
    say(f"{format_line(config)}\nquantisation of the network to it:\n{report}")
    beyond = board_fit(config).get(args.board, ([], []))[0]
    if beyond:  # the memories passed capacity_error's lower bound; the logic is unchecked
        warnings.warn(f"this core is larger than the configuration checked on --board "
                      f"{args.board} ({', '.join(beyond)}; snnkit compile says the same): "
                      f"synthesis and place and route decide whether it fits, which takes "
                      f"minutes and may end in 'does not fit the device'", stacklevel=2)
    if args.board == "ulx3s":
        rep = build_board(net, out, args.clock or 50.0, args.baud, config, args.cores,
                          args.seeds, progress=not args.quiet)
    else:
        rep = build(net, args.board, out, args.clock, args.baud, config, not args.no_bake,
                    progress=not args.quiet, seeds=args.seeds)
    say(str(rep))
    say(f"wrote {Path(out) / 'build_report.json'}")
    if not rep.timing_met and not args.allow_timing_fail:  # as nextpnr itself fails
        raise BuildError(f"timing not met: Fmax {rep.fmax_mhz:.1f} MHz after place and route, "
                         f"below the {rep.clock_mhz:g} MHz clock, so the bitstream may "
                         f"misbehave; build again with {rep.clock_hint()} or more --seeds "
                         f"(--allow-timing-fail accepts it; the files are in {str(out)!r})")
    return 0
