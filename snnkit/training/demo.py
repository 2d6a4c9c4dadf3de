"""``snnkit demo``, part 3: training by surrogate gradients, deployed to the emulated board.

Two networks, both trained on the board's own integers (``arithmetic="fixed"``) so that what
training measures is what the board computes:

* from scratch: 64 -> 128 LIF -> 10 LIF, spike inputs, weights only, T = 8;
* converted + fine-tuned: the demo's converted QCFS MLP, fine-tuned by BPTT at T = 4.

Each is evaluated in the float simulator (on the exported network), the fixed-point simulator
and on the emulated FPGA (the Verilated core behind a serial URL, driven by snnkit.Device).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..demo_rows import say


@dataclass
class Row:
    path: str
    accuracy: float
    samples: int


def _scratch_net(seed: int = 0):
    import snnkit

    rng = np.random.default_rng(seed)
    net = snnkit.Network(name="digits-trained")
    net.add_input("in", 64)
    net.add_population("hid", 128, snnkit.LIF(beta=0.9, threshold=1.0))
    net.add_population("out", 10, snnkit.LIF(beta=0.9, threshold=1.0))
    net.connect("in", "hid", rng.normal(0, 0.5 / 8, (128, 64)))
    net.connect("hid", "out", rng.normal(0, 0.5 / np.sqrt(128), (10, 128)))
    return net


def part_training(out: Path, quick: bool, progress: bool = True, levels: int = 16) -> dict:
    """Run the part (quick: fewer epochs, 60 samples on the board); returns its summary."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small networks: torch's thread team only adds waiting
    try:
        return _part_training(out, quick, progress, levels)
    finally:
        torch.set_num_threads(threads)


def _part_training(out: Path, quick: bool, progress: bool, levels: int) -> dict:
    import torch

    from .. import datasets, emulated_board, encoders
    from ..compiler import HardwareConfig
    from ..convert import convert
    from ..device import Device
    from ..simulator import simulate
    from . import SNN, fit
    from .fit import write_plot
    from .pipeline import finetune_converted

    x_tr, y_tr, x_te, y_te = datasets.digits()
    ann = datasets.train_qcfs("mlp", levels=levels)
    conv = convert(ann, x_tr[:500], mode="rate", input="poisson", v_init=0.5)
    board = HardwareConfig.for_network(conv.network)  # one board for both networks
    epochs = (8, 6) if quick else (60, 30)
    n_fpga = 60 if quick else len(x_te)

    say(f"\ntraining by surrogate gradients (BPTT), on the board's integers "
         f"({board.weight_bits}-bit weights, {board.frac_bits} fractional bits)")
    t0 = time.perf_counter()
    scratch = SNN(_scratch_net(), arithmetic="fixed", board=board, trainable=("weight",))
    h1 = fit(scratch, x_tr, y_tr, epochs=epochs[0], steps=8, lr=3e-3, test=(x_te, y_te),
             progress=progress)
    write_plot(h1, out / "training_scratch.png")
    say(f"from scratch: 64-128-10 LIF, T=8, {epochs[0]} epochs in "
         f"{time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    ft = finetune_converted(ann, x_tr, y_tr, steps=4, input="spikes", arithmetic="fixed",
                            epochs=epochs[1], lr=3e-3, test=(x_te, y_te), progress=progress)
    write_plot(ft.history, out / "training_finetune.png")
    say(f"converted + fine-tuned at T=4: {epochs[1]} epochs in "
         f"{time.perf_counter() - t0:.0f} s")

    nets = {"scratch": (scratch.network(), scratch, encoders.regular(x_te, 8), 8, "out"),
            "fine-tuned": (ft.network, ft.snn, ft.inputs(x_te), 4, ft.output)}
    rows, same = [], {}
    before = simulate(conv.network, encoders.regular(x_te, 4), 4, "fixed").predict(conv.output)
    rows.append(Row("converted alone, T=4, fixed-point simulator",
                    float((before.numpy() == y_te).mean()), len(y_te)))
    preds = {}
    for name, (net, model, x, steps, output) in nets.items():
        net.save(out / f"digits-{name}.snn")
        with torch.no_grad():
            own = model(x).predict(output).numpy()
        preds[name] = {"training": own}
        for backend in ("float", "fixed"):
            preds[name][backend] = simulate(net, x, steps, backend).predict(output).numpy()
    with emulated_board.running(board) as (url, _):
        with Device(url) as dev:
            for name, (net, _, x, steps, output) in nets.items():
                dev.load(net, progress=progress)
                res = dev.run(x[:, :n_fpga], steps, progress=progress)
                preds[name]["fpga"] = res.predict(output).cpu().numpy()
    labels = {"training": "training's own fixed point", "float": "float simulator",
              "fixed": "fixed-point simulator", "fpga": "emulated FPGA over UART"}
    for name, (_, _, _, steps, _) in nets.items():
        for k, label in labels.items():
            p = preds[name][k]
            rows.append(Row(f"{name}, T={steps}, {label}", float((p == y_te[:len(p)]).mean()),
                            len(p)))
        fixed = preds[name]["fixed"]
        same[name] = {"fixed_equals_training": int((fixed == preds[name]["training"]).sum()),
                      "fpga_equals_fixed": int((preds[name]["fpga"] == fixed[:n_fpga]).sum())}
    say(f"\n{'path':<58} {'accuracy':>9} {'samples':>8}")
    for r in rows:
        say(f"{r.path:<58} {100 * r.accuracy:>8.2f}% {r.samples:>8}")
    for name, s in same.items():
        say(f"{name}: fixed-point simulator = training on {s['fixed_equals_training']}/"
             f"{len(y_te)} samples, emulated FPGA = fixed-point simulator on "
             f"{s['fpga_equals_fixed']}/{n_fpga}")
    return {"rows": [asdict(r) for r in rows], "same": same, "fpga_samples": n_fpga,
            "epochs": list(epochs),
            "history": {"scratch": h1.to_dict(), "fine-tuned": ft.history.to_dict()}}
