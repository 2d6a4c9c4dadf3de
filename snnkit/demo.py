"""``snnkit demo``: the whole product on sklearn's digits, honestly measured.

Part 1, conversion: train a small ANN (an MLP with QCFS activations), convert it to a spiking
network, and classify the test split in the float simulator, in the fixed-point simulator and
on the emulated FPGA (the Verilated RTL behind a serial URL, driven by ``snnkit.Device``, the
same driver a real board uses). Part 2, learning: unsupervised STDP in the style of Diehl &
Cook, in the fixed-point simulator and with the board's on-chip learning, which must end with
the same weights. Part 3, training (snnkit/training/demo.py): a network trained from scratch
and the converted one fine-tuned, both by surrogate gradients on the board's integers, on the
same three paths. Part 4, sequences (snnkit/sequence_demo.py): the row-wise digits QRNN
converted exactly to a recurrent spiking network, on the same three paths. Prints one table
per part and writes PNGs.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .demo_rows import Row, say, timed

LEVELS = 16  # QCFS activation levels of the ANN
T_MAIN = 16  # time steps per inference for the table


def _spikes(conv, res) -> float:
    return float(np.mean(conv.spike_count(res)))


def run_snn(conv, x, steps, backend, batch=128, progress=None):
    """Predictions and mean spikes per inference of the converted network on ``x``."""
    from . import encoders
    from .simulator import simulate

    preds, spikes = [], []
    for i in range(0, len(x), batch):
        res = simulate(conv.network, encoders.regular(x[i:i + batch], steps), steps, backend)
        preds.append(res.predict(conv.output).cpu().numpy())
        spikes.append(conv.spike_count(res))
        if progress is not None:
            progress.update(len(x[i:i + batch]))
    return np.concatenate(preds), float(np.concatenate(spikes).mean())


def part_conversion(out: Path, quick: bool, progress: bool = True) -> dict:
    from tqdm.auto import tqdm

    from . import datasets, emulated_board, encoders, plot
    from .compiler import HardwareConfig
    from .convert import convert
    from .device import Device
    from .simulator import simulate

    x_tr, y_tr, x_te, y_te = datasets.digits()
    say(f"digits: {len(x_tr)} training and {len(x_te)} test images (8x8, fixed split)")
    say(f"training the ANN: MLP 64-128-10 with {LEVELS}-level QCFS activations "
         f"(cached after the first run) ...")
    ann, t_train = timed(lambda: datasets.train_qcfs("mlp", levels=LEVELS))
    (ann_pred, t_ann) = timed(lambda: datasets.ann_predict(ann, x_te))
    rows = [Row("ANN (torch, float)", float((ann_pred == y_te).mean()), None,
                1e3 * t_ann / len(x_te), len(x_te))]
    conv = convert(ann, x_tr[:500], mode="rate", input="poisson", v_init=0.5)
    net = conv.network
    net.save(out / "digits.snn")
    say(f"converted in rate mode: {net}; fixed point {net.quantization.weight_bits}-bit "
         f"weights, {net.quantization.frac_bits} fractional bits")

    steps_list = (8, 16) if quick else (4, 8, 16, 32, 64)
    curve = {"float": [], "fixed": []}
    with tqdm(total=len(steps_list) * 2 * len(x_te), desc="simulating T sweep", unit="img",
              disable=not progress) as bar:
        for steps in steps_list:
            for backend in ("float", "fixed"):
                (p, s), dt = timed(lambda steps=steps, backend=backend: run_snn(
                    conv, x_te, steps, backend, progress=bar))
                curve[backend].append(float((p == y_te).mean()))
                if steps == T_MAIN:
                    rows.append(Row(f"SNN {backend} simulator, T={steps}", curve[backend][-1], s,
                                    1e3 * dt / len(x_te), len(x_te)))
                    if backend == "fixed":
                        fixed_pred = p
    plot.curve(list(steps_list), {f"SNN {k}": v for k, v in curve.items()} |
               {"ANN": [rows[0].accuracy] * len(steps_list)}, out / "accuracy_vs_T.png",
               "time steps T", "test accuracy", "digits: converted MLP")

    n_fpga = 60 if quick else len(x_te)
    say("starting the emulated FPGA board (Verilated RTL; the first build takes a minute) ...")
    with emulated_board.running(HardwareConfig.for_network(net)) as (url, _):
        with Device(url) as dev:
            say(f"board at {url}: {dev.info.neurons} neurons, {dev.info.synapses} synapses, "
                 f"features {', '.join(dev.info.features)}")
            dev.load(net, progress=progress)
            x = encoders.regular(x_te[:n_fpga], T_MAIN)
            res, dt = timed(lambda: dev.run(x, T_MAIN, progress=progress))
            counters = dev.read_counters()
    fpga_pred = res.predict(conv.output).cpu().numpy()
    rows.append(Row(f"emulated FPGA over UART, T={T_MAIN}",
                    float((fpga_pred == y_te[:n_fpga]).mean()), _spikes(conv, res),
                    1e3 * dt / n_fpga, n_fpga))
    same = int((fpga_pred == fixed_pred[:n_fpga]).sum())

    one = simulate(net, encoders.regular(x_te[:1], T_MAIN), T_MAIN, "fixed", record=("v",))
    plot.raster(one, out / "raster.png", title=f"one inference of digit {y_te[0]} (fixed point)")
    plot.membrane(one, out / "membrane.png", conv.output, neurons=tuple(range(10)),
                  threshold=None)

    say(f"\n{'path':<36} {'accuracy':>9} {'spikes/inf':>11} {'ms/sample':>10} {'samples':>8}")
    for r in rows:
        sp = "-" if r.spikes is None else f"{r.spikes:.0f}"
        say(f"{r.path:<36} {100 * r.accuracy:>8.2f}% {sp:>11} {r.ms_per_sample:>10.2f} "
             f"{r.samples:>8}")
    say(f"emulated FPGA and fixed-point simulator: identical predictions on {same}/{n_fpga} "
         f"samples (spikes compared bit for bit in the test suite)")
    say(f"board counters of the last run: {counters}")
    return {"rows": [asdict(r) for r in rows], "fpga_equals_fixed": same, "fpga_samples": n_fpga,
            "accuracy_vs_T": {"T": list(steps_list), **curve}, "ann_train_s": t_train}


PARTS = ("conversion", "learning", "training", "sequences")


def run(out, quick: bool = False, progress: bool = True, parts=PARTS) -> int:
    """The demo's ``parts`` (default all four), writing PNGs and ``summary.json`` into the
    folder ``out``; ``quick``: a short run (the test suite's). Returns the exit status 0.

    Interrupted (Ctrl-C, or SIGTERM from the command line), it writes ``summary.json`` with
    the parts that finished and ``"interrupted": true``, and lets the interrupt go on."""
    from .sequence_demo import part_sequences
    from .training.demo import part_training

    out = Path(out)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    summary: dict = {"date": time.strftime("%Y-%m-%d"), "quick": quick}
    run_part = {"conversion": part_conversion, "learning": part_learning,
                "training": part_training, "sequences": part_sequences}
    try:
        for part in parts:
            summary[part] = run_part[part](out, quick, progress)
    except KeyboardInterrupt:
        summary["interrupted"] = True
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        done = [k for k in PARTS if k in summary]
        say(f"\ninterrupted: wrote {out / 'summary.json'} with the finished parts "
             f"({', '.join(done) or 'none'})")
        raise
    except Exception:  # a failure before any file: no empty folder left behind
        if made and not any(out.iterdir()):
            out.rmdir()
        raise
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    files = {"conversion": "digits.snn, accuracy_vs_T.png, raster.png, membrane.png",
             "learning": "weights_learned.png",
             "training": "digits-scratch.snn, digits-fine-tuned.snn, training_scratch.png, "
                         "training_finetune.png",
             "sequences": "digits-rows.snn, sequence_raster.png"}
    say(f"\nwrote {out}/: {', '.join(files[p] for p in parts)}, summary.json")
    return 0


def part_learning(out: Path, quick: bool, progress: bool = True) -> dict:
    """Unsupervised STDP: accuracy in fixed point, and on-chip learning on the emulated board
    ending with exactly the fixed-point simulator's weights."""
    from . import emulated_board, plot
    from . import unsupervised as us
    from .compiler import HardwareConfig
    from .device import Device
    from .quantize import quantize
    from .simulator import simulate

    say("\nunsupervised STDP (Diehl & Cook style): 64 pixels -> 100 excitatory "
         "neurons with adaptive thresholds and lateral inhibition")
    # two passes, quick or not (quick: 80.5% profile / 68.0% mean vote; full: 90.0%); the
    # network asks for 12-bit weights (unsupervised.FORMAT), which the board is built with
    r, dt = timed(lambda: us.experiment(backend="fixed", quick=quick, epochs=2,
                                         progress=progress))
    w = r["net"].projections[0].weight
    plot.weights(w, out / "weights_learned.png", "input weights learned by STDP (fixed point)",
                 image_shape=(8, 8))
    q = r["net"].quantization
    say(f"fixed-point simulator ({q.weight_bits}-bit weights, {q.frac_bits} fractional bits): "
         f"trained on {r['n_train']} digits x {r['epochs']} epochs, labelled, tested on "
         f"{r['n_test']}: accuracy {100 * r['accuracy']:.2f}% (profile vote; Diehl & Cook's "
         f"mean vote {100 * r['accuracy_mean_vote']:.2f}%) ({dt:.0f} s)")

    # on-chip learning: the same input sequence on the emulated board and in the simulator
    n_board = 4 if quick else 16
    x_tr = us.digits()[0][:n_board]
    net, _ = quantize(us.build_network())
    inputs = us.sequence(x_tr, us.Schedule(), net.population(us.GATE).size, seed=1)
    steps = int(next(iter(inputs.values())).shape[0])
    sim = simulate(net, inputs, steps, "fixed", learning=True)
    say(f"on-chip learning: {n_board} digits ({steps} steps) on the emulated board ...")
    with emulated_board.running(HardwareConfig.for_network(net)) as (url, _):
        with Device(url) as dev:
            dev.load(net, progress=progress)
            dev.set_learning(True)
            board, t_board = timed(lambda: dev.run(inputs, steps, progress=progress))
            w_board = dev.read_weights()[us.PLASTIC]
    w_sim = sim.weights[us.PLASTIC].cpu()  # [batch = 1, target, source]; the board's has no batch
    same = bool(torch.equal(w_board.cpu().to(w_sim.dtype), w_sim[0]))
    changed = int((w_sim[0] != torch.from_numpy(
        np.round(net.projections[0].weight / sim.lsb)).to(w_sim.dtype)).sum())
    spikes_same = all(torch.equal(board.spikes[k].cpu(), sim.spikes[k].cpu()) for k in sim.spikes)
    say(f"board weights {'==' if same else '!='} fixed-point simulator weights "
         f"({changed} of {w_sim[0].numel()} synapses changed by learning; spikes "
         f"{'identical' if spikes_same else 'DIFFERENT'}; {t_board:.1f} s on the board)")
    return {"accuracy": r["accuracy"], "accuracy_mean_vote": r["accuracy_mean_vote"],
            "weight_bits": q.weight_bits, "n_train": r["n_train"], "n_test": r["n_test"],
            "epochs": r["epochs"],
            "board_weights_equal": same, "board_spikes_equal": spikes_same,
            "synapses_changed": changed, "board_digits": n_board}
