"""``snnkit simulate NET --input IN --out OUT``: run a network file on saved inputs."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import plot
from ..errors import SnnkitError
from ..network import load
from ..simulator import simulate


def register(sub) -> None:
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
    p.set_defaults(func=run)


def load_inputs(path: str):
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


def run(args: argparse.Namespace) -> int:
    net = load(args.net)
    record = tuple(args.record.split(",")) if args.record else ()
    res = simulate(net, load_inputs(args.input), args.steps, backend=args.backend,
                   record=record, progress=not args.quiet)
    res.save(args.out)
    for name, s in res.spikes.items():
        print(f"{name:<12} {int(s.sum()):>9} spikes  ({s.float().mean():.4f} per neuron-step)")
    print(f"wrote {args.out}")
    if args.plot:
        plot.raster(res, args.plot)
        print(f"wrote {args.plot}")
    return 0
