"""``snnkit compile`` and ``snnkit build``: a network file into the core's parameters and
memory images, or into an FPGA bitstream / project."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..board_format import format_line, to_board
from ..build import BOARDS, build
from ..compiler import HardwareConfig, compile
from ..network import load
from ..quantize import quantize
from .common import UsageError, add_size_args, sizes


def _quantized(path: str):
    net = load(path)
    if net.quantization is None:
        net, report = quantize(net)
        print(f"quantisation (automatic format):\n{report}")
    return net


def register_compile(sub) -> None:
    p = sub.add_parser("compile", help="compile a network into Verilog parameters and memory "
                       "images", description="Compile a network for the Verilog core")
    p.add_argument("net", help="network file (.snn)")
    p.add_argument("-o", "--out", required=True, help="output directory")
    add_size_args(p)
    p.set_defaults(func=run_compile)


def run_compile(args: argparse.Namespace) -> int:
    """Compile, print the report, return the exit status 0 (errors raise NetworkError)."""
    net = _quantized(args.net)
    report = compile(net, args.out, HardwareConfig.for_network(net, **sizes(args)))
    print(report)
    return 0


def register_build(sub) -> None:
    p = sub.add_parser("build", help="build an FPGA bitstream / project for a network",
                       description="Build an FPGA bitstream / project for a network")
    p.add_argument("net", help="network file (.snn)")
    p.add_argument("--board", required=True, choices=sorted(BOARDS),
                   help="ice40: iCEBreaker bitstream; cmod_a7: Vivado project + estimate")
    p.add_argument("-o", "--out", required=True, help="build folder")
    p.add_argument("--clock", type=float, default=None,
                   help="core clock in MHz (default 24 for ice40, 50 for cmod_a7)")
    p.add_argument("--baud", type=int, default=1_000_000,
                   help="UART bit rate (1 Mbaud: the protocol default; 3000000 also works)")
    p.add_argument("--no-bake", action="store_true",
                   help="do not put the network into the bitstream (deploy it over UART)")
    p.add_argument("--seeds", type=int, default=3,
                   help="ice40: placement seeds to try until one meets the clock "
                        "(default 3; each is a place and route)")
    add_size_args(p)
    p.set_defaults(func=run_build)


def run_build(args: argparse.Namespace) -> int:
    """Build, print the report, return the exit status 0."""
    net = load(args.net)
    config = HardwareConfig.for_network(net, **sizes(args))
    if args.seeds < 1:
        raise UsageError(f"--seeds: at least 1, got {args.seeds}")
    fit = to_board(net, config)  # refused here, before anything is written, if it cannot fit
    print(f"{format_line(config)}\nquantisation of the network to it:\n{fit.quantization}",
          flush=True)
    rep = build(fit.net, args.board, args.out, args.clock, args.baud, config, not args.no_bake,
                seeds=args.seeds)
    print(rep)
    print(f"wrote {Path(args.out) / 'build_report.json'}")
    return 0
