"""``snnkit plot OUT.npz --raster/--membrane/--weights``: draw a result that ``snnkit
simulate`` or ``snnkit run`` saved (or :meth:`snnkit.Result.save`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import plot
from ..result import Result
from .common import UsageError, existing_file, output_file, say

KINDS = ("raster", "membrane", "weights")


def register(sub) -> None:
    p = sub.add_parser("plot", help="draw a saved result: spike raster, membrane, weights",
                       description="Draw a result file written by snnkit simulate / run. "
                                   "Each of --raster, --membrane, --weights takes an image "
                                   "name (default RESULT_<kind>.png beside the result); "
                                   "none given: --raster.")
    p.add_argument("result", metavar="RESULT", help="result file (.npz) from simulate / run")
    for kind in KINDS:
        p.add_argument(f"--{kind}", nargs="?", const="", default=None, metavar="PNG",
                       help=f"draw the {kind}" + {"raster": " of all populations",
                                                   "membrane": " (needs --record v)",
                                                   "weights": " of a plastic projection"}[kind])
    p.add_argument("--sample", type=int, default=0, help="which sample of the batch")
    p.add_argument("--population", help="--membrane: the population (default: the last one "
                                        "with a recorded v)")
    p.add_argument("--neurons", default="0,1,2,3",
                   help="--membrane: neuron indices, comma-separated")
    p.add_argument("--projection", help="--weights: the projection, e.g. 'hidden->out' "
                                        "(default: the only plastic one)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    res = Result.load(existing_file(args.result, "RESULT"))
    asked = {k: getattr(args, k) for k in KINDS if getattr(args, k) is not None}
    if not asked:
        asked = {"raster": ""}
    stem = Path(args.result).with_suffix("")
    paths = {k: output_file(v or f"{stem}_{k}.png", f"--{k}", image=True)
             for k, v in asked.items()}
    if not 0 <= args.sample < res.batch:
        raise UsageError(f"--sample: {args.sample} is outside the result's batch "
                         f"(0..{res.batch - 1})")
    jobs = {"raster": lambda path: plot.raster(res, path, sample=args.sample),
            "membrane": lambda path: _membrane(res, path, args),
            "weights": lambda path: _weights(res, path, args)}
    for kind, path in paths.items():
        jobs[kind](path)
        say(f"wrote {path}")
    return 0


def _membrane(res: Result, path: Path, args) -> None:
    with_v = [p for p, d in res.states.items() if "v" in d]
    pop = args.population or (with_v[-1] if with_v else None)
    if pop is None:
        raise UsageError(f"--membrane: {args.result!r} has no recorded membrane potential; "
                         f"simulate with --record v")
    if pop not in with_v:
        raise UsageError(f"--population: {pop!r} has no recorded membrane potential in "
                         f"{args.result!r} (recorded: {with_v or 'none'})")
    try:
        neurons = tuple(int(n) for n in args.neurons.split(",") if n.strip())
    except ValueError:
        raise UsageError(f"--neurons: expected indices like 0,1,2, got {args.neurons!r}")
    size = res.states[pop]["v"].shape[-1]
    bad = [n for n in neurons if not 0 <= n < size]
    if bad or not neurons:
        raise UsageError(f"--neurons: {bad or 'none given'} outside population {pop!r} "
                         f"(0..{size - 1})")
    plot.membrane(res, path, pop, neurons=neurons, sample=args.sample)


def _weights(res: Result, path: Path, args) -> None:
    if not res.weights:
        raise UsageError(f"--weights: {args.result!r} holds no weights (they are saved for "
                         f"projections with STDP)")
    name = args.projection
    if name is None:
        if len(res.weights) > 1:
            raise UsageError(f"--projection: choose one of {sorted(res.weights)}")
        name = next(iter(res.weights))
    if name not in res.weights:
        raise UsageError(f"--projection: {name!r} is not in the result (plastic projections: "
                         f"{sorted(res.weights)})")
    w = res.real(res.weights[name][args.sample])
    plot.weights(w, path, title=f"{name} weights after the run (sample {args.sample}, "
                                f"{res.backend})")
