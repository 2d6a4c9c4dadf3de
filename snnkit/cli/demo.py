"""``snnkit demo``: the end-to-end demo (:mod:`snnkit.demo`)."""

from __future__ import annotations

import argparse

from .. import demo


def register(sub) -> None:
    p = sub.add_parser("demo", help="the end-to-end demo on sklearn digits")
    p.add_argument("--quick", action="store_true", help="a short run (used by the test suite)")
    p.add_argument("--out", default="demo_out", help="folder for PNGs and results")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return demo.run(args.out, args.quick)
