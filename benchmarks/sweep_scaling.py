"""A sweep of 32 configurations on a local Ray, with 1 and with 2 workers (issue 20's target:
it finishes and scales with workers; report wall time for both).

The sweep: the built-in ``train`` task (the digits MLP trained with Adam, then rate-converted
and scored in fixed point on the 450 test digits at T = 16), epochs in {40, 80} x learning rate
in {1e-3, 3e-3} x seeds 0-7: about 1-3 s of work per configuration on one CPU. Wall time
includes starting Ray; ``trial s`` is the sum of the trials' own times (Tune's
``time_total_s``).

Run: ``python benchmarks/sweep_scaling.py [--workers 1,2]`` (a few minutes).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import ray

import snnkit
from snnkit import datasets

CONFIG = {"name": "scaling", "task": "train", "metric": "accuracy",
          "fixed": {"steps": 16, "backend": "fixed"},
          "grid": {"epochs": [40, 80], "lr": [1e-3, 3e-3], "seed": list(range(8))}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    args = ap.parse_args(argv)
    datasets.digits()  # sklearn's data on disk before the clock starts
    walls = {}
    for w in (int(x) for x in args.workers.split(",")):
        if ray.is_initialized():
            ray.shutdown()
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            res = snnkit.sweep(CONFIG, workers=w, out=out, resume=False)
            walls[w] = time.perf_counter() - t0
            trial = sum(r["seconds"] for r in res.rows)
            best = res.best()
        print(f"workers {w}: {len(res.rows)} configurations ({res.errors} failed) in "
              f"{walls[w]:.1f} s wall, {trial:.1f} s in trials; best accuracy "
              f"{best['accuracy']:.3f} at {best['epochs']} epochs, lr {best['lr']}, "
              f"seed {best['seed']}", flush=True)
    if 1 in walls and 2 in walls:
        print(f"speed-up 2 workers / 1: {walls[1] / walls[2]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
