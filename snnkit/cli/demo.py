"""``snnkit demo``: the end-to-end demo (:mod:`snnkit.demo`)."""

from __future__ import annotations

import argparse

from .. import demo
from .common import UsageError, output_dir


def register(sub) -> None:
    p = sub.add_parser("demo", help="the end-to-end demo on sklearn digits",
                       description="Convert, simulate and run on the emulated board a digits "
                                   "classifier, then learn digits with STDP, train by surrogate "
                                   "gradients and run a converted recurrent network; writes "
                                   "PNGs and summary.json. Ctrl-C keeps the finished parts.")
    p.add_argument("--quick", action="store_true", help="a short run (used by the test suite)")
    p.add_argument("--out", default="demo_out", help="folder for PNGs and results")
    p.add_argument("--parts", default=",".join(demo.PARTS),
                   help="which parts to run, comma-separated: conversion (ANN to SNN, float, "
                        "fixed point, emulated board), learning (STDP), training (surrogate "
                        "gradients), sequences (a converted recurrent network)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    bad = [p for p in parts if p not in demo.PARTS]
    if bad or not parts:
        raise UsageError(f"--parts: choose from {', '.join(demo.PARTS)}, got {args.parts!r}")
    return demo.run(output_dir(args.out, "--out"), args.quick, progress=not args.quiet,
                    parts=parts)
