"""The ``snnkit`` command line, each subcommand a thin wrapper over the Python API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from .errors import SnnkitError


def _info(args) -> int:
    if args.net.endswith(".nir"):
        from .nir_io import from_nir

        net = from_nir(args.net, dt=args.dt, convention=args.convention)
        print(net.summary())
        for note in getattr(net, "nir_report", []):
            print(f"  NIR: {note}")
        return 0
    from .fileformat import load

    print(load(args.net).summary())
    return 0


def _load_inputs(path: str):
    """Inputs from ``.npz`` (key ``inputs``, or one key per input population) or ``.npy``."""
    p = Path(path)
    if not p.is_file():
        raise SnnkitError(f"--input: no such file {path!r}")
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False)
    with np.load(p, allow_pickle=False) as z:
        keys = list(z.keys())
        if "inputs" in keys:
            return z["inputs"]
        return {k: z[k] for k in keys}


def _simulate(args) -> int:
    from . import plot
    from .fileformat import load
    from .simulator import simulate

    net = load(args.net)
    record = tuple(args.record.split(",")) if args.record else ()
    res = simulate(net, _load_inputs(args.input), args.steps, backend=args.backend,
                   record=record, progress=not args.quiet)
    res.save(args.out)
    for name, s in res.spikes.items():
        print(f"{name:<12} {int(s.sum()):>9} spikes  ({s.float().mean():.4f} per neuron-step)")
    print(f"wrote {args.out}")
    if args.plot:
        plot.raster(res, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _demo(args) -> int:
    from .demo import main as demo_main

    return demo_main(args)


# Subcommands whose module parses its own arguments: name -> (module, function, help).
DELEGATED = {
    "convert": ("snnkit.convert", "convert_main", "convert a trained torch ANN into a network"),
    "compile": ("snnkit.compiler", "compile_main",
                "compile a network into Verilog parameters and memory images"),
    "emulate": ("snnkit.emulator", "emulate_main",
                "serve the emulated board (Verilated RTL) on a socket or pty"),
    "deploy": ("snnkit.device", "deploy_main", "load a network onto a board over serial"),
    "run": ("snnkit.device", "run_main", "run a network on a board and save its spikes"),
    "build": ("snnkit.build", "build_main", "build an FPGA bitstream / project for a network"),
    "sweep": ("snnkit.sweep", "sweep_main",
              "run a hyper-parameter sweep on Ray (local, or a cluster with --address)"),
}


def _delegate(name: str, argv: list[str]) -> int:
    import importlib

    module, func, _ = DELEGATED[name]
    return getattr(importlib.import_module(module), func)(argv)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="snnkit", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="summarise a network file")
    p.add_argument("net", help="network file (.snn), or a NIR graph (.nir)")
    p.add_argument("--dt", type=float, default=1e-3, help="time step for a .nir file (seconds)")
    p.add_argument("--convention", default="nir", choices=["nir", "snntorch", "norse"],
                   help="whose discretisation a .nir file follows")
    p.set_defaults(func=_info)

    p = sub.add_parser("simulate", help="simulate a network on input spikes")
    p.add_argument("net", help="network file (.snn)")
    p.add_argument("--input", required=True,
                   help=".npz with 'inputs' [steps,batch,n_inputs], or one array per input "
                        "population")
    p.add_argument("--steps", type=int, default=None, help="time steps (default: inputs' length)")
    p.add_argument("--backend", default="float", choices=["float", "fixed", "verilator", "icarus"])
    p.add_argument("--record", default="",
                   help="comma-separated states to record: v,i,theta,weights")
    p.add_argument("--out", required=True, help="output .npz (spikes/<pop>, <state>/<pop>, ...)")
    p.add_argument("--plot", help="write a spike raster PNG of the first sample")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_simulate)

    for name, (_, _, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)  # parsed by its own module
    p = sub.add_parser("demo", help="the end-to-end demo on sklearn digits")
    p.add_argument("--quick", action="store_true", help="a short run (used by the test suite)")
    p.add_argument("--out", default="demo_out", help="folder for PNGs and results")
    p.set_defaults(func=_demo)
    return ap


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        try:
            return _delegate(argv[0], argv[1:])
        except SnnkitError as e:
            print(f"snnkit {argv[0]}: error: {e}", file=sys.stderr)
            return 2
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SnnkitError as e:
        print(f"snnkit {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
