"""``snnkit simulate NET --input IN --out OUT``: run a network on saved inputs."""

from __future__ import annotations

import argparse

from .. import plot
from ..inputs import check_inputs
from ..simulator import RECORDABLE, Simulator, simulate
from .batches import run_in_groups
from .common import (
    UsageError,
    add_encoding_args,
    add_net_args,
    encode_samples,
    load_inputs,
    load_net,
    output_file,
    say,
)


def register(sub) -> None:
    p = sub.add_parser("simulate", help="simulate a network on saved inputs",
                       description="Simulate a network on inputs from a file and save the "
                                   "result (snnkit plot draws it; snnkit.Result.load reads "
                                   "it). Samples run in groups: Ctrl-C saves the finished "
                                   "ones.")
    add_net_args(p)
    p.add_argument("--input", required=True,
                   help=".npz with 'inputs' [steps, batch, n_inputs] (or one array per input "
                        "population), or an .npy array; or samples [batch, n_inputs] (a CNN's: "
                        "images [batch, C, H, W]), encoded as --encoding says")
    p.add_argument("--steps", type=int, default=None,
                   help="time steps (default: the input's length, fewer run the input's "
                        "first steps; samples: 8)")
    add_encoding_args(p)
    p.add_argument("--backend", default="float", choices=["float", "fixed", "verilator",
                                                          "icarus"],
                   help="float (torch), fixed (the hardware's integers), or the Verilog core "
                        "under verilator / icarus")
    p.add_argument("--no-learning", action="store_true",
                   help="switch STDP off: plastic projections keep their weights (as "
                        "snnkit run --no-learning on a board)")
    p.add_argument("--record", default="",
                   help="states to record, comma-separated: v, i, theta, weights")
    p.add_argument("--out", required=True,
                   help="result file, written exactly as named (.npz archive: spikes/<pop>, "
                        "<state>/<pop>, weights/<proj>, meta)")
    p.add_argument("--plot", metavar="PNG", help="also draw the spike raster of sample 0")
    p.set_defaults(func=run)


def record_names(text: str, net, learning: bool | None = None) -> tuple[str, ...]:
    """The ``--record`` list, checked against what the network can record (weights: only
    where a projection learns in this run)."""
    names = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in names if r not in RECORDABLE]
    if bad:
        raise UsageError(f"--record: unknown {', '.join(map(repr, bad))}; choose from "
                         f"{', '.join(RECORDABLE)}")
    if "weights" in names and learning is False:
        raise UsageError("--record weights: with --no-learning the weights do not change")
    if "weights" in names and not any(p.learns(learning) for p in net.projections):
        raise UsageError("--record weights: no projection of this network has STDP, so no "
                         "weight changes (the final weights of plastic projections are "
                         "always saved)")
    return tuple(dict.fromkeys(names))


def run(args: argparse.Namespace) -> int:
    net = load_net(args)
    if args.no_learning and not any(p.stdp is not None for p in net.projections):
        raise UsageError("--no-learning: no projection of this network has STDP")
    learning = False if args.no_learning else None
    record = record_names(args.record, net, learning)
    out = output_file(args.out, "--out", result=True)
    png = output_file(args.plot, "--plot", image=True)
    inputs, steps = encode_samples(args, net, load_inputs(args.input, net))
    arrays, steps, batch = check_inputs(net, inputs, steps)
    if args.backend in ("float", "fixed"):
        sim = Simulator(net, args.backend, learning=learning)

        def one(x):
            return sim.run(x, steps, record=record)
    else:
        first = [not args.quiet]  # the build's timer, once

        def one(x):
            show, first[0] = first[0], False
            return simulate(net, x, steps, args.backend, record=record, learning=learning,
                            progress=show)

    meta = {"command": "simulate", "network": args.net, "input": args.input,
            "backend": args.backend, "record": list(record), "learning": not args.no_learning}
    res = run_in_groups(one, arrays, batch, quiet=args.quiet, desc=f"simulate ({args.backend})",
                        out=out, metadata=meta)
    res.save(out)
    for name, s in res.spikes.items():
        say(f"{name:<12} {int(s.sum()):>9} spikes  ({s.float().mean():.4f} per neuron-step)")
    say(f"wrote {out}")
    if png:
        plot.raster(res, png)
        say(f"wrote {png}")
    return 0
