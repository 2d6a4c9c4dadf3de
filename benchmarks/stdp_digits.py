"""Unsupervised STDP on sklearn digits (Diehl & Cook style), float and fixed point.

Trains snnkit.unsupervised's network (64 pixels -> 100 adaptive LIF neurons with inhibitory
partners, plastic input weights; every digit scaled to the same total ink on the host; in
training each pixel fires regularly from a random phase, when labelling and testing Poisson)
in one sequential batch-1 run over the training split (1347 digits, ``--epochs`` passes),
labels the neurons, and tests on the 450 held-out digits, with the profile vote and with
Diehl & Cook's mean vote on the same responses. The same run with plasticity off gives the
untrained baseline, so the figure shows what learning adds.
``--seeds`` repeats the learning run with other initial weights and spike phases (the
spread is the noise of one figure).

    .venv/bin/python benchmarks/stdp_digits.py [--backend float fixed] [--epochs 2]
        [--seeds 0 1 2] [--no-baseline] [--quick] [--plots DIR] [--train-spikes poisson]
        [--eval-rate 1.0 --eval-steps 200]   (the readout before session 4)
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
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--no-baseline", action="store_true", help="skip the plasticity-off run")
    ap.add_argument("--quick", action="store_true", help="200 training / 200 test digits")
    ap.add_argument("--plots", type=Path, help="write the learned weight maps here")
    ap.add_argument("--train-spikes", choices=("poisson", "regular"), default="regular",
                    help="how training digits fire (unsupervised.Schedule.train_spikes)")
    ap.add_argument("--eval-rate", type=float, default=us.Schedule.eval_rate,
                    help="max spikes/step when labelling and testing (Schedule.eval_rate)")
    ap.add_argument("--eval-steps", type=int, default=us.Schedule.eval_steps,
                    help="steps per digit when labelling and testing (Schedule.eval_steps)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = us.digits()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"1 thread")
    print("| backend | learning | seed | train digits | test digits | accuracy (profile vote) "
          "| D&C mean vote | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    runs = [(b, True, s) for b in args.backend for s in args.seeds]
    if not args.no_baseline:
        runs += [(b, False, args.seeds[0]) for b in args.backend]
    for backend, learning, seed in runs:
        t0 = time.perf_counter()
        r = us.experiment(backend, quick=args.quick, epochs=args.epochs, data=data,
                          learning=learning, seed=seed,
                          schedule=us.Schedule(train_spikes=args.train_spikes,
                                               eval_rate=args.eval_rate,
                                               eval_steps=args.eval_steps))
        dt = time.perf_counter() - t0
        print(f"| {backend} | {'STDP' if learning else 'off'} | {seed} | {r['n_train']} x "
              f"{args.epochs} | {r['n_test']} | {100 * r['accuracy']:.1f}% | "
              f"{100 * r['accuracy_mean_vote']:.1f}% | {dt:.0f} |",
              flush=True)
        if args.plots and learning and seed == args.seeds[0]:
            from snnkit import plot

            args.plots.mkdir(parents=True, exist_ok=True)
            plot.weights(r["net"].projections[0].weight, args.plots / f"stdp_{backend}.png",
                         title=f"learned weights ({backend})", image_shape=(8, 8))


if __name__ == "__main__":
    main()
