"""``snnkit emulate``, ``snnkit deploy`` and ``snnkit run``: serve the emulated board, load a
network onto a board (real or emulated) and run it there."""

from __future__ import annotations

import argparse
import re
import time

import numpy as np

from ..board_format import format_line, to_board
from ..compiler import HardwareConfig
from ..device import Device
from ..emulated_board import SIM_CLKS_PER_BIT, serve
from ..errors import DeviceError
from ..network import load


def register_emulate(sub) -> None:
    p = sub.add_parser("emulate", help="serve the emulated board (Verilated RTL) on a socket or "
                       "pty", description="``snnkit emulate --port socket://127.0.0.1:5555 | "
                                          "--pty [--net NET]``.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serve on socket://127.0.0.1:PORT (a URL or a number)")
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
    p.add_argument("--net", help="size the board for this network (.snn) and its "
                                 "fixed-point format; default: the standard configuration "
                                 "(256 neurons, 16k weights, 8-bit weights, 16-bit states)")
    p.add_argument("--clks-per-bit", type=int, default=SIM_CLKS_PER_BIT,
                   help="simulated clock cycles per UART bit")
    p.add_argument("--cores", type=int, default=1,
                   help="cores on the board (a power of two; > 1: the multi-core board of "
                        "standard cores, which partitions a network on deploy)")
    p.set_defaults(func=run_emulate)


def run_emulate(args: argparse.Namespace) -> int:
    """Serve the emulated board in the foreground until Ctrl-C; return the exit status."""
    config, host, port = None, "127.0.0.1", None
    if args.net and args.cores == 1:
        net = load(args.net)
        config = HardwareConfig.for_network(net)
        fit = to_board(net, config)  # the network in the format the board is built for
        print(f"board sized for {args.net}: {net!r}\nquantisation of the network to the "
              f"board's format:\n{fit.quantization}", flush=True)
    print(format_line(config or HardwareConfig()), flush=True)
    if args.port:
        m = re.fullmatch(r"(?:socket://)?(?:([^:]+):)?(\d+)", args.port)
        if not m:
            raise DeviceError(f"--port: expected socket://HOST:PORT or a number, got "
                              f"{args.port!r}")
        host, port = m.group(1) or host, int(m.group(2))
    return serve(config, port=port, pty=args.pty, host=host, clks_per_bit=args.clks_per_bit,
                 cores=args.cores)


def _add_port_args(parser: argparse.ArgumentParser) -> None:
    """``--port URL --baud N --timeout S``, shared by ``deploy`` and ``run``."""
    parser.add_argument("--port", required=True, help="pyserial URL: /dev/ttyUSB0, a pty "
                                                     "path, socket://host:port")
    parser.add_argument("--baud", type=int, default=1_000_000, choices=(1_000_000, 3_000_000),
                        help="UART bit rate (default 1 Mbaud)")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per response")


def register_deploy(sub) -> None:
    p = sub.add_parser("deploy", help="load a network onto a board over serial",
                       description="``snnkit deploy NET --port URL``: upload and verify a "
                                   "network.")
    p.add_argument("net", help="network file (.snn)")
    _add_port_args(p)
    p.set_defaults(func=run_deploy)


def run_deploy(args: argparse.Namespace) -> int:
    """Upload and verify the network; return the exit status 0."""
    net = load(args.net)
    with Device(args.port, args.baud, args.timeout) as dev:
        i = dev.info
        print(f"board: protocol {i.protocol_version}, {i.neurons} neurons, {i.synapses} "
              f"synapses, features {', '.join(i.features) or 'none'}\n{format_line(i.config)}")
        t0 = time.monotonic()
        report = dev.load(net)
        print(f"quantisation to the board's format:\n{report}")
        print(f"loaded and verified {net!r} in {time.monotonic() - t0:.2f} s")
    return 0


def register_run(sub) -> None:
    p = sub.add_parser("run", help="run a network on a board and save its spikes",
                       description="``snnkit run NET --port URL --input IN.npz --steps T --out "
                                   "OUT.npz``.")
    p.add_argument("net", help="network file (.snn)")
    _add_port_args(p)
    p.add_argument("--input", required=True, help=".npz with 'inputs' [steps, batch, "
                                                 "n_inputs] or one array per input "
                                                 "population")
    p.add_argument("--steps", type=int, default=None, help="steps (default: the input's)")
    p.add_argument("--out", required=True, help="result .npz (spikes/<population> ...)")
    p.add_argument("--no-learning", action="store_true", help="switch on-chip STDP off")
    p.set_defaults(func=run_run)


def run_run(args: argparse.Namespace) -> int:
    """Load the network, run the inputs, save the result; return the exit status 0."""
    net = load(args.net)
    with np.load(args.input) as f:
        inputs = f["inputs"] if "inputs" in f.files else {k: f[k] for k in f.files}
    with Device(args.port, args.baud, args.timeout) as dev:
        print(f"quantisation to the board's format:\n{dev.load(net)}")
        if args.no_learning:
            dev.set_learning(False)
        res = dev.run(inputs, args.steps)
    res.save(args.out)
    print(f"{res!r} -> {args.out}")
    return 0
