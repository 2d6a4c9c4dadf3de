"""``snnkit emulate``, ``snnkit deploy`` and ``snnkit run``: serve the emulated board, load a
network onto a board (real or emulated) and run it there."""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import socket
import threading
import time

from .. import emulated_board, plot
from ..board_format import format_line, to_board
from ..compiler import HardwareConfig
from ..device import Device
from ..emulated_board import MIN_CLKS_PER_BIT, SIM_CLKS_PER_BIT
from ..errors import DeviceError
from ..inputs import check_inputs
from .batches import run_in_groups
from .common import (
    UsageError,
    add_encoding_args,
    add_net_args,
    add_port_args,
    check_cores,
    check_int,
    check_port_args,
    encode_samples,
    load_inputs,
    load_net,
    output_file,
    port_url,
    say,
    socket_address,
)

DEFAULT_EMULATE_PORT = 5555  # what `snnkit emulate` serves on when given neither --port nor --pty


def open_device(args: argparse.Namespace) -> Device:
    """The board at ``--port``; a refused connection says what to start."""
    url = port_url(args.port)
    try:
        return Device(url, args.baud, args.timeout)
    except DeviceError as e:
        if url.startswith("socket://") and "refused" in str(e).lower():
            port = url.rsplit(":", 1)[-1]
            raise DeviceError(f"{e}; nothing listens there: start the emulated board "
                              f"(snnkit emulate --port {port}, in another terminal) or give "
                              f"the board's address") from None
        raise


def register_emulate(sub) -> None:
    p = sub.add_parser("emulate", help="serve the emulated board (Verilated RTL) on a TCP port "
                       "or a pty",
                       description="Serve the emulated board until Ctrl-C: the Verilog core, "
                                   "UART and decoder under Verilator, reached by snnkit deploy "
                                   "/ run --port like a board.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", default=None,
                       help="serve on this TCP port: 5555, localhost:5555 or "
                            "socket://HOST:PORT (0: a free one, printed); default "
                            f"{DEFAULT_EMULATE_PORT}")
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
    add_net_args(p, required=False)
    p.add_argument("--clks-per-bit", type=int, default=SIM_CLKS_PER_BIT,
                   help=f"simulated clock cycles per UART bit (>= {MIN_CLKS_PER_BIT})")
    p.add_argument("--cores", type=int, default=1,
                   help="cores on the board (a power of two; > 1: the multi-core board of "
                        "standard cores, which partitions a network on deploy)")
    p.set_defaults(func=run_emulate)


def run_emulate(args: argparse.Namespace) -> int:
    """Serve the emulated board in the foreground until Ctrl-C or SIGTERM, which stop the
    board and end the command as any other (130 / 143, not 0: a script sees it stopped); a
    board that stops by itself is an error."""
    check_int("--clks-per-bit", args.clks_per_bit, MIN_CLKS_PER_BIT)
    check_cores("--cores", args.cores)
    if args.port is None and not args.pty:
        args.port = str(DEFAULT_EMULATE_PORT)
    host, port = socket_address(args.port) if args.port else ("127.0.0.1", None)
    if args.port:
        _check_free(host, port)
    config = None
    if args.net and args.cores != 1:
        raise UsageError(f"--net with --cores {args.cores}: --net sizes a one-core board; the "
                         f"multi-core board is made of standard cores and partitions the "
                         f"network on deploy (drop --net, or --cores for a board sized for it)")
    if args.net:  # sized for the network as deploy quantises it
        net = load_net(args, "--net")
        config = HardwareConfig.for_network(net)
        fit = to_board(net, config)  # the network in the format the board is built for
        say(f"board sized for {args.net}: {net!r}\nquantisation of the network to the "
            f"board's format:\n{fit.quantization}")
    elif args.dt is not None or args.convention is not None:
        raise UsageError("--dt / --convention: only with --net NET.nir")
    say(format_line(config or HardwareConfig()))
    say("building the emulated board (cached after the first time) ...")
    with _sigint_interrupts(), emulated_board.running(
            config, pty=args.pty, port=port or 0, host=host, clks_per_bit=args.clks_per_bit,
            cores=args.cores, on_line=lambda line: say(line.rstrip()),
            progress=not args.quiet) as (url, proc):
        say(f"emulated board on {url}  (Ctrl-C stops it)")
        status = proc.wait()  # Ctrl-C / SIGTERM: an interrupt here, which stops the board
    raise DeviceError(f"the emulated board stopped by itself (status {status})")


@contextlib.contextmanager
def _sigint_interrupts():
    """SIGINT stops the server even where it was ignored (a shell starts background jobs so):
    otherwise ``kill -INT`` would leave the board process holding its port."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _check_free(host: str, port: int) -> None:
    """Refuse a TCP port already taken (most often by another snnkit emulate), or a host
    that is not this machine's, before the board is built, rather than the emulator's
    "bind: ..." after it."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no user
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise UsageError(f"--port: cannot serve on {host}:{port} ({e.strerror}: "
                                 f"{host} is not an address of this machine?)") from None
            raise UsageError(f"--port: {host}:{port} is in use (another snnkit emulate "
                             f"serving there? stop it, or serve on another port, e.g. "
                             f"--port {port + 1}, and give deploy / run the same --port)"
                             ) from None


def register_deploy(sub) -> None:
    p = sub.add_parser("deploy", help="load a network onto a board (serial, or the emulated "
                                      "one over TCP)",
                       description="Upload a network to a board (or the emulated one) and "
                                   "verify it by reading it back.")
    add_net_args(p)
    add_port_args(p)
    p.set_defaults(func=run_deploy)


def run_deploy(args: argparse.Namespace) -> int:
    """Upload and verify the network; return the exit status 0."""
    check_port_args(args)
    net = load_net(args)
    with open_device(args) as dev:
        i = dev.info
        say(f"board: protocol {i.protocol_version}, {i.neurons} neurons, {i.synapses} "
            f"synapses, features {', '.join(i.features) or 'none'}\n{format_line(i.config)}")
        t0 = time.monotonic()
        report = dev.load(net, progress=not args.quiet)
        say(f"quantisation to the board's format:\n{report}")
        say(f"loaded and verified {net!r} in {time.monotonic() - t0:.2f} s")
    return 0


def register_run(sub) -> None:
    p = sub.add_parser("run", help="run a network on a board and save its spikes",
                       description="Load a network onto a board (or the emulated one), run "
                                   "inputs from a file and save the result, as snnkit "
                                   "simulate does. Samples run one after another: Ctrl-C "
                                   "saves the finished ones.")
    add_net_args(p)
    add_port_args(p)
    p.add_argument("--input", required=True,
                   help=".npz with 'inputs' [steps, batch, n_inputs] (or one array per input "
                        "population), or an .npy array; or samples [batch, n_inputs] (a CNN's: "
                        "images [batch, C, H, W]), encoded as --encoding says")
    p.add_argument("--steps", type=int, default=None,
                   help="time steps (default: the input's length, fewer run the input's "
                        "first steps; samples: 8)")
    add_encoding_args(p)
    p.add_argument("--out", required=True, help="result file, written exactly as named "
                                                "(.npz archive, as snnkit simulate writes)")
    p.add_argument("--plot", metavar="PNG", help="also draw the spike raster of sample 0")
    p.add_argument("--no-learning", action="store_true", help="switch on-chip STDP off")
    p.add_argument("--verbose", action="store_true",
                   help="print the link's counters: frames, resends, CRC errors, frame size")
    p.set_defaults(func=run_run)


def run_run(args: argparse.Namespace) -> int:
    """Load the network, run the inputs, save the result; return the exit status 0."""
    check_port_args(args)
    net = load_net(args)
    out = output_file(args.out, "--out", result=True)
    png = output_file(args.plot, "--plot", image=True)
    inputs, steps = encode_samples(args, net, load_inputs(args.input, net))
    arrays, steps, batch = check_inputs(net, inputs, steps)
    with open_device(args) as dev:
        say(f"quantisation to the board's format:\n{dev.load(net, progress=not args.quiet)}")
        if args.no_learning:
            dev.set_learning(False)

        def one(x):  # every sample of every run starts from the loaded weights
            return dev.run(x, steps)

        meta = {"command": "run", "network": args.net, "input": args.input,
                "port": port_url(args.port), "learning": not args.no_learning}
        res = run_in_groups(one, arrays, batch, quiet=args.quiet, desc="board", out=out,
                            metadata=meta)
        stats = dict(dev.stats)
    res.save(out)
    say(f"{res!r} -> {out}")
    if png:
        plot.raster(res, png)
        say(f"wrote {png}")
    if args.verbose:
        say(link_report(stats))
    return 0


def link_report(stats: dict) -> str:
    """The link counters of a session (``Device.stats``) as one line per group."""
    return (f"link: {stats['frames']} frames sent, {stats['resends']} resent; "
            f"{stats['crc_errors']} damaged responses, {stats['rejected']} frames the board "
            f"got damaged, {stats['timeouts']} timeouts, {stats['suspect']} answers not "
            f"trusted\nlink: frame size {stats['payload']} bytes after "
            f"{stats['payload_changes']} changes; {stats['repairs']} upload repairs, "
            f"{stats['sample_retries']} samples run again, {stats['board_resets']} board "
            f"resets, {stats['reconnects']} reconnects")
