"""``snnkit train``: train a network file by surrogate-gradient BPTT (docs/training.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .errors import NetworkError, SimulationError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="snnkit train", description="Train a network (.snn) on labelled data by "
        "surrogate-gradient backpropagation through time; write the trained network.")
    p.add_argument("net", help="the network to train (.snn)")
    p.add_argument("--data", required=True,
                   help="'digits' (sklearn's 8x8 digits, the project's fixed split), or an .npz "
                        "with x_train, y_train (and x_test, y_test): samples [N, inputs] or "
                        "sequences [N, steps, inputs]")
    p.add_argument("-o", "--out", required=True, help="the trained network (.snn)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--steps", type=int, help="time steps per sample (sequences: their length)")
    p.add_argument("--arithmetic", choices=("float", "fixed"), default="float",
                   help="fixed: train on the hardware's integers (docs/fixed-point.md)")
    p.add_argument("--weight-bits", type=int, help="fixed: weight width (default: the "
                   "network's format, else 8)")
    p.add_argument("--frac-bits", type=int, help="fixed: fractional bits (default: the "
                   "network's format, else the most that fit)")
    p.add_argument("--encoding", choices=("regular", "poisson", "current"), default="regular",
                   help="how samples [N, inputs] become inputs (sequences are used as given)")
    p.add_argument("--output", help="population whose spike counts are the classes "
                   "(default: the last)")
    p.add_argument("--trainable", default="weight",
                   help="comma-separated: weight,bias,threshold,beta,alpha (default: weight)")
    p.add_argument("--per-neuron", action="store_true", help="train neuron parameters per "
                   "neuron (default: one per population, what the hardware holds)")
    p.add_argument("--surrogate", default="fast_sigmoid",
                   choices=("fast_sigmoid", "arctan", "triangle", "straight_through"))
    p.add_argument("--slope", type=float)
    p.add_argument("--loss", choices=("ce_count", "mse_count"), default="ce_count")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--memory", choices=("full", "lean"), default="full")
    p.add_argument("--checkpoint", help="resumable checkpoint (default: OUT.ckpt); running the "
                   "same command again continues from it")
    p.add_argument("--no-resume", action="store_true", help="start over even if the "
                   "checkpoint exists")
    p.add_argument("--plot", help="loss/accuracy PNG (default: OUT.png)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def load_data(spec: str):
    """``(x_train, y_train, x_test | None, y_test | None)`` from 'digits' or an .npz."""
    if spec == "digits":
        from .datasets import digits

        return digits()
    path = Path(spec)
    if not path.is_file():
        raise SimulationError(f"--data: no such file {spec!r} (or use 'digits')")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "y_train") if k not in z.files]
            if missing:
                raise SimulationError(f"--data: {spec!r} has no {missing} (keys: {z.files})")
            test = ("x_test" in z.files) + ("y_test" in z.files)
            if test == 1:
                raise SimulationError(f"--data: {spec!r} has only one of x_test, y_test")
            return (z["x_train"], z["y_train"], z["x_test"] if test else None,
                    z["y_test"] if test else None)
    except (OSError, ValueError) as e:
        raise SimulationError(f"--data: cannot read {spec!r} ({e})") from e


def train_main(argv=None) -> int:
    """Run ``snnkit train``; returns the exit status (errors raise SnnkitError)."""
    from .fileformat import load
    from .network import Quantization
    from .quantize import auto_quantization
    from .training import SNN, evaluate, fit
    from .training.fit import write_json

    args = parser().parse_args(argv)
    net = load(args.net)
    xtr, ytr, xte, yte = load_data(args.data)
    encoding = "sequence" if np.ndim(xtr) == 3 else args.encoding
    q = None
    if args.arithmetic == "fixed":
        base = net.quantization or auto_quantization(net, weight_bits=args.weight_bits or 8)
        q = Quantization(**{**base.__dict__,
                            **({"weight_bits": args.weight_bits} if args.weight_bits else {}),
                            **({"frac_bits": args.frac_bits} if args.frac_bits is not None
                               else {})})
    elif args.weight_bits or args.frac_bits is not None:
        raise NetworkError("--weight-bits, --frac-bits: apply to --arithmetic fixed only")
    model = SNN(net, args.surrogate, args.arithmetic, slope=args.slope,
                trainable=tuple(t for t in args.trainable.split(",") if t),
                per_neuron=args.per_neuron, quantization=q, memory=args.memory)
    out = Path(args.out)
    ckpt = args.checkpoint or str(out) + ".ckpt"
    plot = args.plot or str(out.with_suffix(".png"))
    test = (xte, yte) if xte is not None else None
    history = fit(model, xtr, ytr, epochs=args.epochs, steps=args.steps, encoding=encoding,
                  output=args.output, loss=args.loss, lr=args.lr, batch_size=args.batch_size,
                  seed=args.seed, test=test, checkpoint=ckpt, resume=not args.no_resume,
                  progress=not args.quiet, plot=plot)
    trained = model.network()
    trained.save(out)  # atomic
    write_json(history.to_dict(), str(out) + ".history.json")
    steps = args.steps or (np.shape(xtr)[1] if encoding == "sequence" else None)
    line = f"trained {history.epochs} epochs in {sum(history.seconds):.1f} s, " \
           f"{args.arithmetic} arithmetic: final loss {history.loss[-1]:.4f}, train accuracy " \
           f"{100 * history.train_accuracy[-1]:.2f}%"
    if test is not None:
        r = evaluate(model, xte, yte, steps=steps,
                     encoding="regular" if encoding == "poisson" else encoding,
                     output=args.output)
        line += f", test accuracy {100 * r['accuracy']:.2f}%"
    print(line)
    print(f"wrote {out}, {plot}, {out}.history.json (checkpoint {ckpt})")
    return 0
