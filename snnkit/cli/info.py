"""``snnkit info NET``: the summary table of a network file or a NIR graph."""

from __future__ import annotations

import argparse

from .common import add_net_args, load_net


def register(sub) -> None:
    p = sub.add_parser("info", help="summarise a network (.snn, or .nir with --dt or --convention)",
                       description="Print a network's populations, models, projections, "
                                   "synapses and weight memory; for a NIR graph also what "
                                   "the import approximated.")
    add_net_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    net = load_net(args)
    print(net.summary())
    for note in getattr(net, "nir_report", []):
        print(f"  NIR: {note}")
    return 0
