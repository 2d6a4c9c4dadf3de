"""Unsupervised STDP on sklearn digits (Diehl & Cook style), float and fixed point.

Trains snnkit.unsupervised's network (64 Poisson pixels -> 100 adaptive LIF neurons with
inhibitory partners, plastic input weights; every digit scaled to the same total ink on the
host) in one sequential batch-1 run over the training split (1347 digits), labels the
neurons, and tests on the 450 held-out digits. The same run
with plasticity off gives the untrained baseline, so the figure shows what learning adds.

    .venv/bin/python benchmarks/stdp_digits.py [--backend float fixed] [--epochs 1]
        [--quick] [--plots DIR]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from snnkit import unsupervised as us


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", nargs="+", default=["float", "fixed"])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="200 training / 200 test digits")
    ap.add_argument("--plots", type=Path, help="write the learned weight maps here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = us.digits()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"1 thread")
    print("| backend | learning | train digits | test digits | accuracy | seconds |")
    print("|---|---|---|---|---|---|")
    for backend in args.backend:
        for learning in (True, False):
            t0 = time.perf_counter()
            r = us.experiment(backend, quick=args.quick, epochs=args.epochs, data=data,
                              learning=learning)
            dt = time.perf_counter() - t0
            print(f"| {backend} | {'STDP' if learning else 'off'} | {r['n_train']} x "
                  f"{args.epochs} | {r['n_test']} | {100 * r['accuracy']:.1f}% | {dt:.0f} |",
                  flush=True)
            if args.plots and learning:
                from snnkit import plot

                args.plots.mkdir(parents=True, exist_ok=True)
                plot.weights(r["net"].projections[0].weight, args.plots / f"stdp_{backend}.png",
                             title=f"learned weights ({backend})", image_shape=(8, 8))


if __name__ == "__main__":
    main()
