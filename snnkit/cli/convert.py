"""``snnkit convert MODEL --calib DATA -o NET``: a torch ANN file (or a built-in example)
converted into a network file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from .. import datasets, model_file
from ..convert import convert
from ..errors import SnnkitError
from ..network import Quantization
from .common import UsageError, check_int, existing_file, load_arrays, output_file, say


def register(sub) -> None:
    p = sub.add_parser("convert", help="convert a trained torch ANN into a network",
                       description="Convert a torch ANN into a spiking network file. "
                                   "The model file is read without running code from it "
                                   "(docs/convert.md); a whole pickled model needs "
                                   "--trust-pickle.")
    p.add_argument("model", help="MODEL: a torch.export program (.pt2), a TorchScript file, "
                   "a state dict (with --model-class), or 'example:mlp' / 'example:cnn' "
                   "(built-in digits models; 'example:mlp-qcfs8' etc. for QCFS-trained ones)")
    p.add_argument("--model-class", help="MODEL is a state dict of this class: "
                   "package.module:Class or path/to/file.py:Class (your own code)")
    p.add_argument("--model-kwargs", help="JSON object of the class's constructor arguments")
    p.add_argument("--trust-pickle", action="store_true",
                   help="MODEL may be a whole pickled model (torch.save(model)): unpickling "
                        "runs whatever code the file holds, so only for files you trust")
    p.add_argument("--calib", help="calibration data: .npy, or .npz (array 'x', or the first "
                   "array); default for examples: the digits training set")
    p.add_argument("--test", help="labelled test data (.npz: x and y, or x_test and y_test): "
                   "print the ANN's and the converted network's (float and fixed point, as on the "
                   "board) accuracy; default for examples: the digits test set")
    p.add_argument("-o", "--out", required=True,
                   help="output network file (.snn), and beside it OUT.conversion.json")
    p.add_argument("--mode", choices=("rate", "lossless"), default="rate",
                   help="rate coding, or lossless (exact for QCFS-trained models)")
    p.add_argument("--input", choices=("spikes", "poisson", "current"), default="spikes",
                   help="first-layer drive: spikes (default; rate mode: regular spike trains, "
                        "lossless: a burst; inputs in [0, 1]; what the hardware takes), "
                        "poisson (rate mode), current (analog; simulators only)")
    p.add_argument("--norm", choices=("percentile", "max"), default="percentile",
                   help="threshold balancing by a percentile or the maximum of activations")
    p.add_argument("--percentile", type=float, default=99.9,
                   help="for --norm percentile, in (0, 100]")
    p.add_argument("--per-channel", action="store_true",
                   help="balance per output channel / neuron, not per layer")
    p.add_argument("--steps", type=int, default=32, help="rate mode: steps per inference")
    p.add_argument("--input-levels", type=int, default=16,
                   help="lossless mode with spike input: levels of the input burst")
    p.add_argument("--weight-bits", type=int, default=8,
                   help="fixed-point weight width, 2 to 16")
    p.set_defaults(func=run)


def load_model(spec: str, model_class: str | None = None, model_kwargs: str | None = None,
               trust_pickle: bool = False):
    """The model of ``spec``: ``example:NAME`` or a model file, read without running code
    from it unless ``trust_pickle`` (:func:`snnkit.model_file.load_model`)."""
    if spec.startswith("example:"):
        name = spec.split(":", 1)[1]
        try:
            datasets.example_name(name)
        except SnnkitError as e:
            raise UsageError(f"MODEL: {e}") from None
        return datasets.example_model(name)
    try:
        kwargs = json.loads(model_kwargs) if model_kwargs else {}
    except json.JSONDecodeError as e:
        raise UsageError(f"--model-kwargs: not a JSON object ({e})") from e
    if not isinstance(kwargs, dict):
        raise UsageError("--model-kwargs: not a JSON object")
    return model_file.load_model(spec, model_class, kwargs, trust_pickle)


def load_calib(path: str) -> np.ndarray:
    """Calibration samples from an ``.npy``, or an ``.npz`` (array ``x``, or the first one)."""
    data = load_arrays(path, "--calib")
    if not isinstance(data, dict):
        return data
    if not data:
        raise UsageError(f"--calib: {path!r} holds no arrays")
    return data["x"] if "x" in data else next(iter(data.values()))


def load_test(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from an ``.npz`` holding ``x``/``y`` or ``x_test``/``y_test``."""
    data = load_arrays(path, "--test")
    for kx, ky in (("x", "y"), ("x_test", "y_test")):
        if isinstance(data, dict) and kx in data and ky in data:
            return data[kx], data[ky]
    raise UsageError(f"--test: {path!r} must be an .npz holding arrays 'x' and 'y' (or "
                     f"'x_test' and 'y_test')")


def accuracy_line(model, conv, x, y) -> str:
    """The ANN's and the converted network's (float, fixed point) test accuracy, one line."""
    import torch

    with torch.no_grad():
        p = next(model.parameters(), None)
        dtype = p.dtype if p is not None else torch.float32
        ann = model(torch.as_tensor(np.asarray(x), dtype=dtype)).argmax(-1).numpy()
    y = np.asarray(y).reshape(-1)
    acc = {b: 100 * (conv.predict(x, backend=b) == y).mean() for b in ("float", "fixed")}
    bits = conv.network.quantization.weight_bits if conv.network.quantization else 8
    board = (f"the board's {bits}-bit weights" if conv.input != "current" else
             f"{bits}-bit weights; current input, which the hardware does not take")
    return (f"test accuracy on {len(y)} samples: ANN {100 * (ann == y).mean():.2f}%; "
            f"converted, T={conv.steps}: float {acc['float']:.2f}%, fixed point ({board}) "
            f"{acc['fixed']:.2f}%")


def check_options(args: argparse.Namespace) -> None:
    """Refuse numeric options the conversion cannot use, before reading the model: ``--steps
    0`` wrote a network that every later simulation failed on."""
    check_int("--steps", args.steps, 1)
    check_int("--input-levels", args.input_levels, 1)
    check_int("--weight-bits", args.weight_bits, *Quantization.LIMITS["weight_bits"])
    if not 0 < args.percentile <= 100:
        raise UsageError(f"--percentile: must be in (0, 100], got {args.percentile:g}")


def run(args: argparse.Namespace) -> int:
    """Write NET and, beside it, ``NET.conversion.json`` (mode, input encoding, steps, output
    population), which a reader needs to feed the network; return the exit status 0."""
    check_options(args)
    example = args.model.startswith("example:")
    if not example:
        existing_file(args.model, "MODEL")
        if not args.calib:
            raise UsageError("--calib: needed for a model file (examples bring their own)")
    out = output_file(args.out, "--out")
    output_file(str(out) + ".conversion.json", "--out")
    calib = load_calib(args.calib) if args.calib else None
    test = load_test(args.test) if args.test else None
    model = load_model(args.model, args.model_class, args.model_kwargs, args.trust_pickle)
    if example and (calib is None or test is None):
        digits = datasets.digits(image="cnn" in args.model)
        calib = digits[0][:500] if calib is None else calib
        test = (digits[2], digits[3]) if test is None else test
    conv = convert(model, calib, mode=args.mode, input=args.input, normalization=args.norm,
                   percentile=args.percentile, per_channel=args.per_channel, steps=args.steps,
                   input_levels=args.input_levels, weight_bits=args.weight_bits,
                   name=Path(args.out).stem)
    conv.network.save(out)
    info = {"mode": conv.mode, "input": conv.input, "steps": conv.steps, "output": conv.output,
            "layers": conv.layers, "levels": conv.levels, "input_levels": conv.input_levels,
            "kick_steps": conv.kick_steps, "input_shape": list(conv.input_shape)}
    Path(str(out) + ".conversion.json").write_text(json.dumps(info, indent=2) + "\n")
    say(conv.network.summary())
    say(f"\n{conv.mode} conversion, {conv.input} input, {conv.steps} steps per inference; "
        f"wrote {args.out} and {args.out}.conversion.json")
    if test is not None:
        say(accuracy_line(model, conv, *test))
    return 0
