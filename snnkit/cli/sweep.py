"""``snnkit sweep CONFIG``: a hyper-parameter sweep on Ray (local, or a cluster)."""

from __future__ import annotations

import argparse

from ..sweep import sweep
from .common import check_int, existing_file, output_dir, say


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a hyper-parameter sweep on Ray (local, or a "
                       "cluster with --address)",
                       description="Run a hyper-parameter sweep on Ray (local by default); "
                                   "resumes an interrupted one")
    p.add_argument("config", help="sweep configuration (.toml or .json)")
    p.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    p.add_argument("--workers", type=int, help="trials at once (default: one per CPU)")
    p.add_argument("--out", default="sweeps", help="results folder (default: sweeps)")
    p.add_argument("--no-resume", action="store_true", help="start anew, even if a sweep of "
                   "this name is in --out")
    p.set_defaults(func=run_sweep)


def run_sweep(args: argparse.Namespace) -> int:
    """Run the sweep, print where its table and plot are and the best configuration; the
    exit status is 1 when a configuration failed."""
    check_int("--workers", args.workers, 1)
    config = existing_file(args.config, "CONFIG")
    out = output_dir(args.out, "--out")
    res = sweep(config, address=args.address, workers=args.workers, out=out,
                resume=not args.no_resume)
    best = res.best()
    say(f"{len(res.rows)} configurations ({res.errors} failed) -> {res.csv}")
    if res.plot:
        say(f"plot -> {res.plot}")
    if best:
        say(f"best {res.config.metric} = {best[res.config.metric]:.4g}: "
              f"{ {k: best[k] for k in res.config.varied} }")
    return 1 if res.errors else 0
