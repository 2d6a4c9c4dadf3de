"""``snnkit train NET --data D -o OUT``: surrogate-gradient training of a network file
(docs/training.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import SimulationError
from ..network import Quantization
from ..quantize import auto_quantization
from ..training import SNN, evaluate, fit
from ..training.fit import DEFAULT_STEPS, load_data, write_json
from .common import (
    UsageError,
    add_net_args,
    check_int,
    check_positive,
    existing_file,
    flat_samples,
    load_net,
    output_file,
    say,
)


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a network by surrogate-gradient BPTT (float or fixed point)",
        description="Train a network (.snn or .nir) on labelled data by surrogate-gradient "
                    "backpropagation through time; write the trained network.")
    add_net_args(p)
    p.add_argument("--data", required=True,
                   help="'digits' (sklearn's 8x8 digits, the project's fixed split), or an .npz "
                        "with x_train, y_train (and x_test, y_test): samples [N, inputs] (a CNN's: "
                        "or images [N, C, H, W]) or sequences [N, steps, inputs]")
    p.add_argument("-o", "--out", required=True, help="the trained network (.snn)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training data")
    p.add_argument("--steps", type=int, help="time steps per sample (default: "
                   f"{DEFAULT_STEPS}; sequences: their length)")
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
                   choices=("fast_sigmoid", "arctan", "triangle", "straight_through"),
                   help="the spike's derivative in the backward pass")
    p.add_argument("--slope", type=float, help="the surrogate's slope (default: its own)")
    p.add_argument("--loss", choices=("ce_count", "mse_count"), default="ce_count",
                   help="cross-entropy or squared error of the output spike counts")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    p.add_argument("--batch-size", type=int, default=64, help="samples per update")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffling and encoders")
    p.add_argument("--memory", choices=("full", "lean"), default="full",
                   help="lean: checkpoint chunks of steps, recomputed in the backward pass")
    p.add_argument("--checkpoint", help="resumable checkpoint (default: OUT.ckpt); running the "
                   "same command again continues from it")
    p.add_argument("--no-resume", action="store_true", help="start over even if the "
                   "checkpoint exists")
    p.add_argument("--plot", help="loss/accuracy PNG (default: OUT with .png)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _format(net, args) -> Quantization | None:
    if args.arithmetic != "fixed":
        if args.weight_bits or args.frac_bits is not None:
            raise UsageError("--weight-bits, --frac-bits: apply to --arithmetic fixed only")
        return None
    base = net.quantization or auto_quantization(net, weight_bits=args.weight_bits or 8)
    new = {"weight_bits": args.weight_bits, "frac_bits": args.frac_bits}
    return Quantization(**{**base.__dict__, **{k: v for k, v in new.items() if v is not None}})


def check_options(args: argparse.Namespace) -> None:
    """Refuse what training cannot use before anything is read or written (exit 2): a
    missing --data file and numbers out of range ended as the library's errors (exit 1), or
    in a run that learns nothing (--lr 0)."""
    if args.data != "digits":
        existing_file(args.data, "--data")
    check_int("--epochs", args.epochs, 1)
    check_int("--steps", args.steps, 1)
    check_int("--batch-size", args.batch_size, 1)
    check_int("--weight-bits", args.weight_bits, *Quantization.LIMITS["weight_bits"])
    check_int("--frac-bits", args.frac_bits, *Quantization.LIMITS["frac_bits"])
    check_positive("--lr", args.lr)
    check_positive("--slope", args.slope)


def run(args: argparse.Namespace) -> int:
    check_options(args)
    net = load_net(args)
    out = output_file(args.out, "--out")
    ckpt = args.checkpoint or str(out) + ".ckpt"
    plot = args.plot or str(out.with_suffix(".png"))
    output_file(ckpt, "--checkpoint")
    output_file(plot, "--plot", image=True)
    output_file(str(out) + ".history.json", "--out")
    try:  # a missing or unreadable --data file is a usage error, as --input's are
        xtr, ytr, xte, yte = load_data(args.data)
    except SimulationError as e:
        raise UsageError(f"--{e}") from None
    xtr, xte = flat_samples(net, xtr), flat_samples(net, xte)  # a CNN's images [N, C, H, W]
    encoding = "sequence" if np.ndim(xtr) == 3 else args.encoding
    if args.steps is None and encoding != "sequence":
        args.steps = DEFAULT_STEPS  # (as fit's default; said in the summary and the history)
    model = SNN(net, args.surrogate, args.arithmetic, slope=args.slope,
                trainable=tuple(t for t in args.trainable.split(",") if t),
                per_neuron=args.per_neuron, quantization=_format(net, args), memory=args.memory)
    test = (xte, yte) if xte is not None else None
    try:
        history = fit(model, xtr, ytr, epochs=args.epochs, steps=args.steps,
                      encoding=encoding, output=args.output, loss=args.loss, lr=args.lr,
                      batch_size=args.batch_size, seed=args.seed, test=test, checkpoint=ckpt,
                      resume=not args.no_resume, progress=not args.quiet, plot=plot)
    except KeyboardInterrupt:
        if Path(ckpt).exists():
            say(f"interrupted: {ckpt} holds the finished epochs; the same command "
                f"continues from it")
        raise
    model.network().save(out)  # atomic, and only now
    write_json({**history.to_dict(), "steps": args.steps, "encoding": encoding},
               str(out) + ".history.json")  # how simulate / run feed samples to it
    line = (f"trained {history.epochs} epochs in {sum(history.seconds):.1f} s, "
            f"{args.arithmetic} arithmetic: final loss {history.loss[-1]:.4f}, train accuracy "
            f"{100 * history.train_accuracy[-1]:.2f}%")
    if test is not None:
        steps = args.steps or (np.shape(xtr)[1] if encoding == "sequence" else None)
        r = evaluate(model, xte, yte, steps=steps, output=args.output,
                     encoding="regular" if encoding == "poisson" else encoding)
        line += f", test accuracy {100 * r['accuracy']:.2f}%"
    say(line)
    say(f"wrote {out}, {plot}, {out}.history.json (checkpoint {ckpt})")
    return 0
