"""``snnkit info NET``: the summary table of a network file or a NIR graph."""

from __future__ import annotations

import argparse

from ..network import load
from ..nir_import import from_nir


def register(sub) -> None:
    p = sub.add_parser("info", help="summarise a network file")
    p.add_argument("net", help="network file (.snn), or a NIR graph (.nir)")
    p.add_argument("--dt", type=float, default=1e-3, help="time step for a .nir file (seconds)")
    p.add_argument("--convention", default="nir", choices=["nir", "snntorch", "norse"],
                   help="whose discretisation a .nir file follows")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.net.endswith(".nir"):
        net = from_nir(args.net, dt=args.dt, convention=args.convention)
        print(net.summary())
        for note in getattr(net, "nir_report", []):
            print(f"  NIR: {note}")
        return 0
    print(load(args.net).summary())
    return 0
