"""Sequence tasks on sklearn digits: quantised RNNs trained in torch, converted exactly to
recurrent spiking networks (snnkit.convert, docs/convert.md "Recurrent networks").

Tasks (the project's fixed digits split, 1347 / 450 samples):

* ``row``: the 8x8 image read row by row, 8 elements of 8 pixels;
* ``s``:   pixel by pixel, 64 elements of 1 pixel (S-digits);
* ``ps``:  pixel by pixel in a fixed random permutation (PS-digits, numpy seed 0).

Per task (:func:`snnkit.datasets.train_qrnn`, sizes and epochs from ``SEQUENCE_TASKS`` /
``SEQUENCE_TRAINING``): a float clipped-ReLU RNN (the QRNN's own layers with real weights and
``clip(u, 0, L)``, :attr:`QRNN.exact` False; S/PS start from orthogonal recurrent weights)
trained with label smoothing and rounding noise (:attr:`QRNN.noise`), then fine-tuned as the
QRNN (integer weights and levels, straight-through gradients); converted with ``bias="input"``
and run on the whole test split in the float and the fixed-point
simulators, and (``--fpga``, default the row-wise task) on the emulated board through
``snnkit.Device``, built with the iCE40 target's sizes (256 neurons with the inputs, 64k
synapse words, 4 populations, 4 projections, delay 3). "ANN" is the float RNN before
quantisation; "== QRNN" the share of test samples whose every layer's levels at every
element equal the QRNN's; spikes per sequence count the converted layers (not the inputs
or clock neurons).

    .venv/bin/python benchmarks/sequence_digits.py [--tasks row s ps] [--epochs FLOAT QRNN]
        [--fpga row] [--quick] [--seeds 0 1] [--validation]

``--validation`` trains on the training split less 200 held-out samples
(:func:`snnkit.datasets.digits_validation`) and scores on those: how the defaults are chosen,
without reading the test split.

Prints a markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from snnkit import datasets
from snnkit.compiler import HardwareConfig, board_config, board_fit, build_images
from snnkit.convert import QRNN, convert
from snnkit.convert_rnn import same_levels


def ann_accuracy(q: QRNN, x, y) -> float:
    """The float model's accuracy (real weights, ``clip(u, 0, L)``)."""
    with torch.no_grad():
        return float((q(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def on_board(conv, x, ref_fixed):
    """Predictions of the emulated board (Device) and whether every spike equals the fixed
    simulator's, whole split."""
    import snnkit
    from snnkit import emulated_board

    with emulated_board.running(board_config(conv.network, "ice40")) as (url, _):
        with snnkit.Device(url) as dev:
            dev.load(conv.network)
            res = dev.run(conv.encode(x))
    same = all(torch.equal(res.spikes[n].cpu(), s.cpu()) for n, s in ref_fixed.spikes.items())
    return conv.predict(result=res), same


def bench(task: str, epochs: tuple, fpga: bool, rows: list[str], seed: int = 0,
          validation: bool = False):
    shape, hidden, levels, out_levels, code = datasets.SEQUENCE_TASKS[task]
    xte, yte = datasets.digits_validation()[2:] if validation else datasets.digits()[2:]
    xte = datasets.digit_sequences(task, xte)
    t0 = time.time()
    ann = ann_accuracy(datasets.train_qrnn(task, False, seed, *epochs, validation=validation),
                       xte, yte)
    q = datasets.train_qrnn(task, True, seed, *epochs, validation=validation)
    train_s = time.time() - t0
    ref = q.levels(xte)
    q_pred = ref[-1].argmax(-1)
    conv = convert(q, bias="input")
    net = conv.network
    res = {b: conv.run(xte, b) for b in ("float", "fixed")}
    acc = {b: float((conv.predict(result=r) == yte).mean()) for b, r in res.items()}
    same = {b: float(same_levels(conv, r, ref).mean()) for b, r in res.items()}
    spikes = float(conv.spike_count(res["fixed"]).mean())
    neurons = net.n_inputs + net.n_neurons
    over = board_fit(HardwareConfig.for_network(net))["ice40"]
    try:
        build_images(net, board_config(net, "ice40"))
        fits = "yes" if over == ([], []) else f"no ({'; '.join(over[0] + over[1])})"
    except Exception as e:  # what does not fit, for the table: its first clause
        fits = f"no ({str(e).split(';')[0].split(chr(10))[0][:80]})"
    board = "-"
    if fpga:
        t1 = time.time()
        b_pred, b_same = on_board(conv, xte, res["fixed"])
        board = (f"{100 * (b_pred == yte).mean():.2f} (== fixed: every spike "
                 f"{'yes' if b_same else 'NO'}, {time.time() - t1:.0f} s)")
    qn = net.quantization
    steps = xte.shape[1] * conv.steps_per_element
    rows.append(
        f"| {task}{'' if seed == 0 else f' (seed {seed})'} | "
        f"{xte.shape[1]}x{int(np.prod(shape))}, {code} | {hidden}x{levels}, out "
        f"{out_levels} | "
        f"{100 * ann:.2f} | {100 * float((q_pred == yte).mean()):.2f} | "
        f"{100 * acc['float']:.2f} ({100 * same['float']:.0f}% == QRNN) | "
        f"{100 * acc['fixed']:.2f} ({100 * same['fixed']:.0f}% == QRNN) | {board} | "
        f"{conv.steps_per_element} | {steps} | {spikes:.0f} | {neurons} ({fits}) | "
        f"{qn.weight_bits}/{qn.state_bits}/{qn.frac_bits} | {train_s:.0f} s |")
    print(rows[-1], flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", nargs="+", default=list(datasets.SEQUENCE_TASKS),
                   choices=list(datasets.SEQUENCE_TASKS))
    p.add_argument("--epochs", nargs=2, type=int, default=[None, None],
                   help="default: per task, snnkit.datasets.SEQUENCE_TRAINING",
                   metavar=("FLOAT", "QUANTISED"))
    p.add_argument("--fpga", nargs="*", default=["row"], choices=list(datasets.SEQUENCE_TASKS),
                   help="tasks also run on the emulated board (Verilator; whole test split)")
    p.add_argument("--quick", action="store_true", help="4 + 2 epochs, row-wise only")
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds (0)")
    p.add_argument("--validation", action="store_true",
                   help="train on the training split less its validation part "
                        "(snnkit.datasets.digits_validation, 200 samples) and score on that "
                        "part, as the defaults were chosen; the test split is not read")
    args = p.parse_args()
    if args.quick:
        args.tasks, args.epochs = ["row"], [4, 2]
    torch.set_num_threads(1)  # small matrices: a second thread only adds synchronisation
    t0 = time.time()
    rows = ["| task | T x values, code | hidden x L | ANN % | QRNN % | SNN float % | SNN fixed % | "
            "emulated FPGA % | steps / element | steps / sequence | spikes / sequence | "
            "neurons (fits iCE40 target) | w/s/frac bits | training (0: cached) |",
            "|" + "---|" * 14]
    print("\n".join(rows))
    for task in args.tasks:
        for seed in args.seeds:
            bench(task, tuple(args.epochs), task in args.fpga, rows, seed, args.validation)
    ep = {t: tuple(args.epochs) if args.epochs[0] else datasets.SEQUENCE_TRAINING[t][:2]
          for t in args.tasks}
    print(f"\n{platform.machine()} {platform.processor() or ''}, load {os.getloadavg()[0]:.1f}, "
          f"{time.time() - t0:.0f} s in all; epochs (float, quantised): {ep}"
          + ("; accuracies on the VALIDATION split (200 training samples held out)"
             if args.validation else "; accuracies on the test split"))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
