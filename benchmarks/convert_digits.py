"""ANN -> SNN conversion accuracy on sklearn digits (fixed split, built-in example models).

Rate mode (IF, reset by subtraction, 99.9th-percentile threshold balancing in the weights,
constant-current input) at T = 4..64 steps, and lossless mode (QCFS-trained ANN with L = T
levels, burst spike input of pixel/16 spikes) in the float and the fixed-point simulators.
Spikes per inference count the converted layers only (not the inputs, bias and clock neurons).

    .venv/bin/python benchmarks/convert_digits.py [--models mlp cnn small-cnn] \
        [--steps 4 8 16 32 64]

``small-cnn``: a CNN with a linear read-out, converted with the defaults (spike input): the
output lift at work (docs/convert.md).

Prints a markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from snnkit import datasets
from snnkit.convert import convert


def row(model, mode, t, steps, ann, res, extra=""):
    fl, fx = res["float"], res["fixed"]
    return (f"| {model} | {mode} | {t} | {steps} | {100 * ann:.2f} | {100 * fl['accuracy']:.2f} | "
            f"{100 * fx['accuracy']:.2f} | {fl['spikes']:.0f} | {fx['spikes']:.0f} | {extra} |")


def bench(name: str, steps_list, rows):
    image = name == "cnn"
    xtr, _ytr, xte, yte = datasets.digits(image=image)
    ann = datasets.train_mlp() if name == "mlp" else datasets.train_cnn()
    ann_acc = float((datasets.ann_predict(ann, xte) == yte).mean())
    conv = convert(ann, xtr[:500], mode="rate", input="current")
    for t in steps_list:
        res = {b: datasets.evaluate(conv, xte, yte, steps=t, backend=b) for b in ("float", "fixed")}
        rows.append(row(name, "rate", t, t, ann_acc, res))
        print(rows[-1], flush=True)
    for t in steps_list:
        q = datasets.train_qcfs(name, t)
        q_pred = datasets.ann_predict(q, xte)
        q_acc = float((q_pred == yte).mean())
        conv = convert(q, xtr[:500], mode="lossless", input="spikes")
        res = {b: datasets.evaluate(conv, xte, yte, backend=b) for b in ("float", "fixed")}
        same_f = float((res["float"]["predictions"] == q_pred).mean())
        ref_x = conv.reference(xte, "fixed")[-1].argmax(1)
        same_x = float((res["fixed"]["predictions"] == ref_x).mean())
        extra = (f"QANN {100 * q_acc:.2f}%; same as QANN: float {100 * same_f:.1f}%, "
                 f"fixed vs 8-bit QANN {100 * same_x:.1f}%; "
                 f"{conv.network.quantization.state_bits}-bit states")
        rows.append(row(name, "lossless", t, conv.steps, ann_acc, res, extra))
        print(rows[-1], flush=True)


def small_cnn():
    """A CNN as users write one, with a linear read-out: Conv2d 1->8 (3x3, padding 1), ReLU,
    AvgPool2d(2), Flatten, Linear 128->10. Some test samples have every logit negative: the
    conversion's output lift (docs/convert.md) is what makes their top class fire."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(128, 10))


def bench_lift(steps_list, rows):
    xtr, ytr, xte, yte = datasets.digits(image=True)
    ann = datasets._train("digits-smallcnn-s0-e30", small_cnn, xtr, ytr, 30, 0, True)
    ann_acc = float((datasets.ann_predict(ann, xte) == yte).mean())
    conv = convert(ann, xtr[:500])  # the defaults: rate mode, spike input
    for t in steps_list:
        res = {b: datasets.evaluate(conv, xte, yte, steps=t, backend=b) for b in ("float", "fixed")}
        rows.append(row("small-cnn", "rate, spikes", t, t, ann_acc, res,
                        f"output lift {conv.output_lift:.3g}"))
        print(rows[-1], flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", nargs="+", default=["mlp", "cnn"])
    p.add_argument("--steps", nargs="+", type=int, default=[4, 8, 16, 32, 64])
    args = p.parse_args()
    t0 = time.time()
    rows = [("| model | mode | T (levels) | sim steps | ANN % | SNN float % | SNN fixed % | "
            "spikes/inf float | spikes/inf fixed | notes |"), "|" + "---|" * 10]
    print("\n".join(rows))
    for m in args.models:
        if m == "small-cnn":
            bench_lift(args.steps, rows)
        else:
            bench(m, args.steps, rows)
    print(f"\n{platform.machine()} {platform.processor() or ''}, "
          f"{time.time() - t0:.0f} s including training on a cold cache")
    print("\n".join(rows))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
