"""``snnkit demo``: the end-to-end demo (:mod:`snnkit.demo`)."""

from __future__ import annotations

import argparse

from .. import demo
from .common import output_dir


def register(sub) -> None:
    p = sub.add_parser("demo", help="the end-to-end demo on sklearn digits",
                       description="Convert, simulate and run on the emulated board a digits "
                                   "classifier, then learn digits with STDP; writes PNGs and "
                                   "summary.json. Ctrl-C keeps the finished parts.")
    p.add_argument("--quick", action="store_true", help="a short run (used by the test suite)")
    p.add_argument("--out", default="demo_out", help="folder for PNGs and results")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return demo.run(output_dir(args.out, "--out"), args.quick, progress=not args.quiet)
