"""Surrogate-gradient training on sklearn digits (the project's fixed split): from scratch in
float and in the board's fixed point, converted + fine-tuned, and a recurrent network on rows.

Every network trained here deploys to today's hardware unless said otherwise: spike inputs
(``snnkit.encoders.regular``, pixel/16 as a rate), LIF neurons with one value per population,
no bias, trained weights only.

1. scratch: 64 -> 128 LIF -> 10 LIF (beta 0.9, threshold 1), T = 8, Adam 3e-3 with a cosine
   schedule, 60 epochs, batch 64, cross-entropy of the output spike counts; seeds 0-4.
2. fixed: the same trained with ``arithmetic="fixed"`` (8-bit weights, 6 fractional bits):
   training's own fixed-point evaluation, the fixed-point simulator on the exported network and
   the emulated board (Verilated RTL over UART, ``snnkit.Device``) must give identical
   predictions on the whole test split.
3. converted + fine-tuned at T = 4 (``snnkit.training.pipeline.finetune_converted``) from the
   example MLP (datasets.train_mlp): current input (the simulators only; the target row), and
   spike input in fixed point (deployable: fixed simulator and board compared).
4. recurrent: one image row per step (each row held for 2 steps, pixels thermometer-coded
   into 4 spike inputs each: 32 inputs), 128 LIF with all-to-all recurrent projection (delay
   1) -> 10 LIF, T = 16; float and fixed.

    .venv/bin/python benchmarks/train_digits.py [--parts scratch fixed finetune recurrent]
        [--seeds 0 1 2 3 4] [--quick] [--no-board]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

import snnkit
from snnkit import datasets, encoders
from snnkit.training import SNN, evaluate, fit
from snnkit.training.pipeline import finetune_converted

T, HIDDEN, EPOCHS, LR = 8, 128, 60, 3e-3
Q8 = snnkit.Quantization(weight_bits=8, state_bits=16, frac_bits=6)


def scratch_net(seed: int) -> snnkit.Network:
    rng = np.random.default_rng(seed)
    net = snnkit.Network(name="digits-scratch")
    net.add_input("in", 64)
    net.add_population("hid", HIDDEN, snnkit.LIF(beta=0.9, threshold=1.0))
    net.add_population("out", 10, snnkit.LIF(beta=0.9, threshold=1.0))
    net.connect("in", "hid", rng.normal(0, 0.5 / 8, (HIDDEN, 64)))
    net.connect("hid", "out", rng.normal(0, 0.5 / np.sqrt(HIDDEN), (10, HIDDEN)))
    return net


def board_predictions(net, x, steps, output) -> np.ndarray:
    """Predictions of the emulated board (the Verilated core behind a serial URL)."""
    from snnkit import emulated_board
    from snnkit.compiler import HardwareConfig
    from snnkit.device import Device

    with emulated_board.running(HardwareConfig.for_network(net)) as (url, _):
        with Device(url) as dev:
            dev.load(net)
            return dev.run(x, steps, progress=True).predict(output).cpu().numpy()


def part_scratch(seeds, epochs, rows):
    xtr, ytr, xte, yte = datasets.digits()
    for seed in seeds:
        m = SNN(scratch_net(seed), trainable=("weight",))
        t0 = time.perf_counter()
        h = fit(m, xtr, ytr, epochs=epochs, steps=T, lr=LR, seed=seed, progress=False)
        dt = time.perf_counter() - t0
        r = evaluate(m, xte, yte, steps=T)
        sim = snnkit.simulate(m.network(), encoders.regular(xte, T)).predict("out").numpy()
        assert np.array_equal(sim, r["predictions"]), "float simulate disagrees with training"
        rows.append(("scratch float", seed, r["accuracy"], None, dt / len(h.loss), r["spikes"]))
        print(f"scratch float seed {seed}: {100 * r['accuracy']:.2f}% ({dt / len(h.loss):.2f} "
              f"s/epoch, {r['spikes']:.0f} spikes/sample)", flush=True)


def part_fixed(seeds, epochs, board, rows):
    xtr, ytr, xte, yte = datasets.digits()
    for seed in seeds:
        m = SNN(scratch_net(seed), arithmetic="fixed", quantization=Q8, trainable=("weight",))
        t0 = time.perf_counter()
        h = fit(m, xtr, ytr, epochs=epochs, steps=T, lr=LR, seed=seed, progress=False)
        dt = time.perf_counter() - t0
        own = evaluate(m, xte, yte, steps=T)
        net = m.network()
        x = encoders.regular(xte, T)
        sim = snnkit.simulate(net, x, backend="fixed").predict("out").numpy()
        same = f"fixed sim {int((sim == own['predictions']).sum())}/{len(yte)}"
        if board:
            fpga = board_predictions(net, x, T, "out")
            same += f", board {int((fpga == own['predictions']).sum())}/{len(yte)}"
        rows.append(("scratch fixed 8-bit", seed, own["accuracy"], same, dt / len(h.loss),
                     own["spikes"]))
        print(f"scratch fixed seed {seed}: {100 * own['accuracy']:.2f}% ({same} identical to "
              f"training's own evaluation; {dt / len(h.loss):.2f} s/epoch)", flush=True)


def part_finetune(epochs, board, rows):
    xtr, ytr, xte, yte = datasets.digits()
    ann = datasets.train_mlp()
    ann_acc = float((datasets.ann_predict(ann, xte) == yte).mean())
    rows.append(("ANN (example MLP 64-128-10)", 0, ann_acc, None, None, None))
    print(f"ANN: {100 * ann_acc:.2f}%", flush=True)
    for inp, arith in (("current", "float"), ("spikes", "fixed")):
        t0 = time.perf_counter()
        ft = finetune_converted(ann, xtr, ytr, steps=4, input=inp, arithmetic=arith,
                                epochs=epochs, lr=LR, progress=False)
        dt = time.perf_counter() - t0
        before = SNN(ft.converted.network, arithmetic=arith,
                     quantization=ft.converted.network.quantization if arith == "fixed"
                     else None)
        b = evaluate(before, xte, yte, steps=4, encoding=ft.encoding, output=ft.output)
        own = evaluate(ft.snn, xte, yte, steps=4, encoding=ft.encoding, output=ft.output)
        note = f"converted alone {100 * b['accuracy']:.2f}%"
        if arith == "fixed":
            sim = ft.predict(xte, "fixed")
            note += f"; fixed sim {int((sim == own['predictions']).sum())}/{len(yte)}"
            if board:
                fpga = board_predictions(ft.network, ft.inputs(xte), 4, ft.output)
                note += f", board {int((fpga == own['predictions']).sum())}/{len(yte)}"
        name = f"converted + fine-tuned, T=4, {inp} input, {arith}"
        rows.append((name, 0, own["accuracy"], note, dt / epochs, own["spikes"]))
        print(f"{name}: {100 * own['accuracy']:.2f}% ({note}; ANN - SNN = "
              f"{100 * (ann_acc - own['accuracy']):.2f} pt)", flush=True)


def row_sequences(x: np.ndarray) -> np.ndarray:
    """[N, 64] -> [N, 16, 32]: row r at steps 2r and 2r + 1, each pixel as 4 thermometer
    spikes (pixel >= 1/8, 3/8, 5/8, 7/8)."""
    rows = x.reshape(len(x), 8, 8)
    spikes = (rows[..., None] >= (np.arange(4) + 0.5) / 4).reshape(len(x), 8, 32)
    return np.repeat(spikes, 2, axis=1)


def recurrent_net(seed: int) -> snnkit.Network:
    rng = np.random.default_rng(seed)
    net = snnkit.Network(name="digits-rows")
    net.add_input("row", 32)
    net.add_population("hid", HIDDEN, snnkit.LIF(beta=0.9))
    net.add_population("out", 10, snnkit.LIF(beta=0.9))
    net.connect("row", "hid", rng.normal(0, 1 / np.sqrt(32), (HIDDEN, 32)))
    net.connect("hid", "hid", rng.normal(0, 0.05, (HIDDEN, HIDDEN)), delay=1)
    net.connect("hid", "out", rng.normal(0, 1 / np.sqrt(HIDDEN), (10, HIDDEN)))
    return net


def part_recurrent(epochs, rows):
    xtr, ytr, xte, yte = datasets.digits()
    str_, ste = row_sequences(xtr), row_sequences(xte)
    for arith in ("float", "fixed"):
        m = SNN(recurrent_net(0), arithmetic=arith, trainable=("weight",),
                quantization=Q8 if arith == "fixed" else None)
        t0 = time.perf_counter()
        h = fit(m, str_, ytr, epochs=epochs, encoding="sequence", lr=1e-3, progress=False)
        dt = time.perf_counter() - t0
        r = evaluate(m, ste, yte, encoding="sequence")
        note = None
        if arith == "fixed":
            sim = snnkit.simulate(m.network(), torch.from_numpy(ste).transpose(0, 1),
                                  backend="fixed").predict("out").numpy()
            note = f"fixed sim {int((sim == r['predictions']).sum())}/{len(yte)}"
        rows.append((f"recurrent, rows, T=16, {arith}", 0, r["accuracy"], note,
                     dt / len(h.loss), r["spikes"]))
        print(f"recurrent {arith}: {100 * r['accuracy']:.2f}% ({dt / len(h.loss):.2f} "
              f"s/epoch)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--parts", nargs="+",
                    default=["scratch", "fixed", "finetune", "recurrent"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--quick", action="store_true", help="one seed, fewer epochs")
    ap.add_argument("--no-board", action="store_true", help="skip the emulated board")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = args.seeds[:1] if args.quick else args.seeds
    epochs = 10 if args.quick else EPOCHS
    rows = []
    t0 = time.perf_counter()
    if "scratch" in args.parts:
        part_scratch(seeds, epochs, rows)
    if "fixed" in args.parts:
        part_fixed(seeds, epochs, not args.no_board, rows)
    if "finetune" in args.parts:
        part_finetune(10 if args.quick else 40, not args.no_board, rows)
    if "recurrent" in args.parts:
        part_recurrent(10 if args.quick else 50, rows)
    print(f"\n{platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), "
          f"{time.perf_counter() - t0:.0f} s")
    print("| run | seed | test accuracy | identical predictions | s / epoch | spikes / sample |")
    print("|---|---|---|---|---|---|")
    for name, seed, acc, same, sec, spk in rows:
        print(f"| {name} | {seed} | {100 * acc:.2f}% | {same or '-'} | "
              f"{'-' if sec is None else f'{sec:.2f}'} | {'-' if spk is None else f'{spk:.0f}'} |")


if __name__ == "__main__":
    main()
