"""``snnkit demo``, part 4: a sequence model. The row-wise digits QRNN (each image read as 8
rows of 8 pixels; :func:`snnkit.datasets.train_qrnn`, cached, the model of
benchmarks/sequence_digits.py) converted exactly to a recurrent spiking network, run in the
float and the fixed-point simulators and on the emulated FPGA (built with the iCE40 target's
sizes, driven by ``snnkit.Device``). The summary counts the samples on which every layer's
levels equal the QRNN's and those on which the board's spikes equal the fixed-point
simulator's, bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from .demo_rows import Row, say, timed

TASK = "row"


def part_sequences(out: Path, quick: bool, progress: bool = True) -> dict:
    """Run the part (quick: 60 samples on the board, the simulators on all); returns its
    summary."""
    from . import datasets, emulated_board, plot
    from .compiler import board_config, board_fit
    from .convert import convert
    from .convert_rnn import same_levels
    from .device import Device

    _, _, x_te, y_te = datasets.digits()
    x = datasets.digit_sequences(TASK, x_te)
    shape, hidden, levels, out_levels, code = datasets.SEQUENCE_TASKS[TASK]
    say(f"\nsequences: digits read row by row ({x.shape[1]} elements of {shape[0]} pixels); "
         f"a quantised ReLU RNN, {hidden} units x {levels} levels, read-out {out_levels} "
         f"levels (cached after the first run) ...")
    q, t_train = timed(lambda: datasets.train_qrnn(TASK))
    ref, t_q = timed(lambda: q.levels(x))
    q_pred = ref[-1].argmax(-1)
    rows = [Row("QRNN (torch, integer levels)", float((q_pred == y_te).mean()), None,
                1e3 * t_q / len(x), len(x))]
    conv = convert(q, bias="input")
    net = conv.network
    net.save(out / "digits-rows.snn")
    neurons = net.n_inputs + net.n_neurons
    config = board_config(net, "ice40")
    fits = board_fit(config)["ice40"] == ([], [])
    say(f"converted exactly: {net}; {conv.steps_per_element} step per element, "
         f"{neurons} neurons with the inputs ({'fits' if fits else 'does NOT fit'} the iCE40 "
         f"target's {config.n_max})")

    res, same, preds = {}, {}, {}
    for backend in ("float", "fixed"):
        res[backend], dt = timed(lambda backend=backend: conv.run(x, backend))
        preds[backend] = conv.predict(result=res[backend])
        same[backend] = int(same_levels(conv, res[backend], ref).sum())
        rows.append(Row(f"SNN {backend} simulator", float((preds[backend] == y_te).mean()),
                        float(conv.spike_count(res[backend]).mean()), 1e3 * dt / len(x),
                        len(x)))

    n_fpga = 60 if quick else len(x)
    say("on the emulated FPGA board ...")
    with emulated_board.running(config) as (url, _):
        with Device(url) as dev:
            dev.load(net, progress=progress)
            board, dt = timed(lambda: dev.run(conv.encode(x[:n_fpga]), progress=progress))
    fpga_pred = conv.predict(result=board)
    rows.append(Row("emulated FPGA over UART", float((fpga_pred == y_te[:n_fpga]).mean()),
                    float(conv.spike_count(board).mean()), 1e3 * dt / n_fpga, n_fpga))
    spikes_same = np.ones(n_fpga, bool)  # per sample: every spike of every population
    for name, s in res["fixed"].spikes.items():
        spikes_same &= (board.spikes[name].cpu()[:, :n_fpga] == s.cpu()[:, :n_fpga]).all(
            dim=(0, 2)).numpy()

    one = conv.run(x[:1], "fixed")
    plot.raster(one, out / "sequence_raster.png",
                title=f"digit {y_te[0]} read row by row (fixed point)")

    say(f"\n{'path':<36} {'accuracy':>9} {'spikes/seq':>11} {'ms/sample':>10} {'samples':>8}")
    for r in rows:
        sp = "-" if r.spikes is None else f"{r.spikes:.0f}"
        say(f"{r.path:<36} {100 * r.accuracy:>8.2f}% {sp:>11} {r.ms_per_sample:>10.2f} "
             f"{r.samples:>8}")
    say(f"every layer's levels at every element equal the QRNN's on {same['float']}/{len(x)} "
         f"samples (float), {same['fixed']}/{len(x)} (fixed point); emulated FPGA: every "
         f"spike equal to the fixed-point simulator's on {int(spikes_same.sum())}/{n_fpga} "
         f"samples")
    return {"rows": [asdict(r) for r in rows],
            "float_equals_qrnn": same["float"], "fixed_equals_qrnn": same["fixed"],
            "fpga_equals_fixed": int(spikes_same.sum()),
            "fpga_predictions_equal_fixed": int((fpga_pred == preds["fixed"][:n_fpga]).sum()),
            "samples": len(x), "fpga_samples": n_fpga,
            "steps_per_element": conv.steps_per_element,
            "steps_per_sequence": x.shape[1] * conv.steps_per_element,
            "neurons": neurons, "fits_ice40": fits, "hidden": hidden, "levels": levels,
            "qrnn_train_s": t_train}
