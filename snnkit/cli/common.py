"""What several commands share: the usage error, the options every command has, reading a
network, input arrays and a port from the command line, and checking outputs before working.

Each check raises :class:`UsageError` (exit status 2) naming the option and the file; errors
found while working are the library's own (:class:`~snnkit.errors.SnnkitError`, status 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import select
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DeviceError, SimulationError, SnnkitError
from ..nir_import import CONVENTIONS

SIZES = ("n_max", "syn_max", "p_max", "pr_max", "d_max", "tr_max")  # HardwareConfig fields


class UsageError(SnnkitError):
    """The command line cannot be carried out as given (a bad option value or combination, a
    missing or unreadable input file, an unusable output path): exit status 2."""


class Formatter(argparse.HelpFormatter):
    """Help that states each option's default (unless the text does, or there is none)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" not in text and action.option_strings and action.nargs != 0
                and action.default not in (None, False, "", argparse.SUPPRESS)):
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """A subcommand's parser: the shared formatter, and ``--quiet`` / ``--debug`` on every
    command (a command may define its own ``--quiet`` over this one)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", Formatter)
        kwargs.setdefault("conflict_handler", "resolve")
        super().__init__(*args, **kwargs)
        self.add_argument("--quiet", action="store_true", help="no progress bars")
        self.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                          help="on an error, show the Python traceback too")


# --------------------------------------------------------------------------- networks


def add_net_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``NET`` (a positional, or ``--net`` when not ``required``), ``--dt``, ``--convention``."""
    what = "network: a .snn file, or a NIR graph (.nir, with --dt or --convention)"
    if required:
        p.add_argument("net", metavar="NET", help=what)
    else:
        p.add_argument("--net", metavar="NET", help=what)
    p.add_argument("--dt", type=float, default=None,
                   help="time step in seconds of a .nir graph (required for .nir, except "
                        "with --convention snntorch or sinabs, whose exporters fix it; a .snn "
                        "file carries its own)")
    p.add_argument("--convention", choices=CONVENTIONS, default=None,
                   help="whose discretisation a .nir graph follows (default: nir)")


def load_net(args: argparse.Namespace, option: str = "NET"):
    """The network named on the command line: a ``.snn`` file, or a ``.nir`` graph read with
    ``--dt`` (required unless the convention's exporter fixes it) and ``--convention``.

    Raises
    ------
    UsageError : missing file, ``--dt`` missing for a .nir that does not carry its step, or
        given for .snn
    NetworkError : the file is not a valid network (from the loader)
    """
    from ..network import load

    path = existing_file(args.net, option)
    if path.suffix.lower() == ".nir":
        from ..nir_import import StepError, from_nir

        check_positive("--dt", args.dt, "seconds")
        try:
            return _quiet_exact(lambda: from_nir(str(path), dt=args.dt,
                                                 convention=args.convention or "nir"))
        except StepError as e:  # --dt missing, or against --convention
            if args.dt is None:
                raise UsageError(f"--dt: required for the NIR graph {args.net!r} (NIR is "
                                 f"continuous time; give the simulation step in seconds, e.g. "
                                 f"--dt 1e-3; --convention snntorch or sinabs set it "
                                 f"themselves, and a graph snnkit exported carries its "
                                 f"own)") from None
            raise UsageError(f"--{e}") from None
    if args.dt is not None or args.convention is not None:
        opt = "--dt" if args.dt is not None else "--convention"
        raise UsageError(f"{opt}: only for NIR graphs (.nir); {args.net!r} is a .snn network, "
                         f"which carries its own dt")
    if path.suffix.lower() in TORCH_SUFFIXES:
        raise UsageError(f"{option}: {args.net!r} is a torch model, not a network: convert it "
                         f"first (snnkit convert {args.net} --calib X.npy -o NET.snn, "
                         f"docs/convert.md), or export a spiking model to NIR (.nir)")
    return load(path)


TORCH_SUFFIXES = (".pt", ".pt2", ".pth", ".ts", ".ckpt", ".onnx")


def _quiet_exact(read):
    """``read()`` of a NIR graph, warning only of what it approximated: the exact
    reinterpretations (thresholds raised by a float32 step, biases folded, ...) keep the
    behaviour, and every command printed them as a warning; ``snnkit info`` lists them."""
    import warnings

    from ..nir_report import NIRApproximationWarning, warn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = read()
    for w in caught:
        if not issubclass(w.category, NIRApproximationWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    warn([n for n in net.nir_report if not n.exact],
         "NIR import: approximated (snnkit info NET lists every interpretation)", 1)
    return net


# --------------------------------------------------------------------------- files


def existing_file(path: str, option: str) -> Path:
    """``path`` as a Path, checked to be an existing file."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{option}: {path!r} is a folder, not a file")
    if not p.is_file():
        raise UsageError(f"{option}: no such file {path!r}")
    return p


def load_arrays(path: str, option: str) -> np.ndarray | dict[str, np.ndarray]:
    """The array of an ``.npy`` file, or the arrays of an ``.npz`` file by name.

    Raises
    ------
    UsageError : missing file, or not a numpy file (pickled data is refused)
    """
    p = existing_file(path, option)
    try:
        with open(p, "rb") as f:
            zipped = f.read(4) == b"PK\x03\x04"
        if not zipped:
            with open(p, "rb") as f:
                if f.read(6) != b"\x93NUMPY":
                    raise UsageError(f"{option}: {path!r} is not a numpy .npz or .npy file "
                                     f"(text such as .csv: np.save('x.npy', np.loadtxt(...)))")
            arrays = {None: np.load(p, allow_pickle=False)}
        else:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise UsageError(f"{option}: {path!r} is not a numpy .npz or .npy file of numbers "
                         f"({e})") from e
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise UsageError(f"{option}: {path!r}{'' if k is None else f' array {k!r}'} holds "
                             f"{a.dtype} values, not numbers")
    return arrays[None] if None in arrays else arrays


SAMPLE_ENCODINGS = ("regular", "poisson", "current")


def add_encoding_args(p: argparse.ArgumentParser) -> None:
    """``--encoding``: how samples ``[batch, inputs]`` become inputs, as ``snnkit train``
    encodes them, so a network trained from samples runs on the same samples."""
    p.add_argument("--encoding", choices=SAMPLE_ENCODINGS, default=None,
                   help="an --input of samples [batch, n_inputs] is encoded over --steps "
                        "steps (default 8, as snnkit train), as snnkit train does: regular / "
                        "poisson spike rates in [0, 1], current: the values on every step "
                        "(default: as NET.conversion.json says beside a converted network; "
                        "current for a current input; regular otherwise)")


def flat_samples(net, x):
    """Image samples ``[batch, C, H, W]`` of a network whose one input population is shaped
    ``[C, H, W]`` (a CNN's), flattened to ``[batch, C*H*W]`` as the network indexes them;
    anything else unchanged. Only populations of 3+ dimensions, so ``[steps, batch, n]`` is
    never read as images."""
    if x is None or isinstance(x, dict) or len(net.inputs) != 1:
        return x
    shape = tuple(net.inputs[0].shape or ())
    if len(shape) >= 3 and np.ndim(x) == 1 + len(shape) and np.shape(x)[1:] == shape:
        return np.reshape(x, (np.shape(x)[0], -1))
    return x


def encode_samples(args: argparse.Namespace, net, x):
    """``(inputs, steps)``: ``x`` as loaded, or samples ``[batch, inputs]`` (or images
    ``[batch, C, H, W]`` of a CNN) encoded with ``--encoding`` over ``--steps`` (the defaults
    of ``snnkit train``), said on stdout."""
    check_int("--steps", args.steps, 1)
    x = flat_samples(net, x)
    if isinstance(x, dict) or np.ndim(x) != 2:
        if args.encoding is not None:
            shape = "one array per population" if isinstance(x, dict) else list(np.shape(x))
            raise UsageError(f"--encoding: only for samples [batch, inputs]; the input is "
                             f"{shape}, already [steps, batch, inputs]")
        held = [np.shape(v)[0] for v in (x.values() if isinstance(x, dict) else [x])
                if np.ndim(v) == 3]
        if args.steps is not None and held and args.steps > min(held):
            raise UsageError(f"--steps: {args.steps} is more than the {min(held)} steps the "
                             f"input holds")
        return x, args.steps
    from ..training.fit import DEFAULT_STEPS, encode

    conv = _conversion(args, net)
    if conv is not None and args.encoding is None:  # fed as the conversion is (its steps)
        try:
            x = conv.encode(x, args.steps)
        except SimulationError as e:
            raise UsageError(f"--input: {e}") from None
        say(f"{len(x[0])} samples encoded as {args.net}.conversion.json says ({conv.mode} "
            f"conversion, {conv.input} input) over {len(x)} steps")
        return x, len(x)
    if len(net.inputs) != 1:
        raise UsageError(f"--input: samples of shape {list(np.shape(x))}; the network has "
                         f"{len(net.inputs)} input populations, and samples [batch, inputs] "
                         f"feed one: give [steps, batch, inputs] arrays, one per population")
    if np.shape(x)[1] != net.n_inputs:
        raise UsageError(f"--input: samples of shape {list(np.shape(x))}; the network's input "
                         f"{net.inputs[0].name!r} takes [batch, {net.n_inputs}]")
    trained = _trained_with(args)
    enc = args.encoding or trained.get("encoding") or (
        "current" if net.inputs[0].encoding == "current" else "regular")
    if enc == "current" and net.inputs[0].encoding == "spikes":
        raise UsageError(f"--encoding current: the input population {net.inputs[0].name!r} "
                         f"takes spikes (0/1); use --encoding regular or poisson for rates "
                         f"in [0, 1]")
    steps = args.steps or (conv.steps if conv is not None else
                           trained.get("steps") or DEFAULT_STEPS)
    x = np.asarray(x, np.float64)
    if enc != "current" and x.size and (x.min() < 0 or x.max() > 1):
        raise UsageError(f"--encoding {enc}: samples must be spike rates in [0, 1], got "
                         f"[{x.min():g}, {x.max():g}] (scale them, or --encoding current for "
                         f"a current input)")
    used = ((args.steps is None and "steps" in trained)
            or (args.encoding is None and "encoding" in trained))
    said = f" (as it was trained: {args.net}.history.json)" if used else ""
    say(f"{len(x)} samples encoded as {enc} inputs over {steps} steps{said}")
    return encode(x, steps, enc, seed=0), steps


def _conversion(args: argparse.Namespace, net):
    """The :class:`~snnkit.convert.Conversion` that ``snnkit convert`` described beside the
    network (``NET.conversion.json``): samples must be fed as it encodes them (its steps,
    its lossless burst), or the network computes something else. None where there is none."""
    path = Path(str(getattr(args, "net", "")) + ".conversion.json")
    if not getattr(args, "net", None) or not path.is_file():
        return None
    from ..convert import Conversion

    try:
        d = json.loads(path.read_text())
        return Conversion(net, d["mode"], d["input"], list(d["layers"]), int(d["steps"]),
                          list(d.get("levels", [])), int(d.get("input_levels", 0)),
                          list(d.get("kick_steps", [])), tuple(d.get("input_shape", ())))
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(f"NET: {path} is damaged ({type(e).__name__}: {e})") from None


def _trained_with(args: argparse.Namespace) -> dict:
    """``{"steps", "encoding"}`` that ``snnkit train`` fed the network with, from
    ``NET.history.json`` beside it (empty where there is none): samples run as trained."""
    path = Path(str(getattr(args, "net", "")) + ".history.json")
    if not getattr(args, "net", None) or not path.is_file():
        return {}
    try:
        d = json.loads(path.read_text())
    except ValueError:
        return {}
    out = {}
    if isinstance(d.get("steps"), int) and d["steps"] > 0:
        out["steps"] = d["steps"]
    if d.get("encoding") in SAMPLE_ENCODINGS:  # tested on regular spikes, as fit evaluates
        out["encoding"] = "regular" if d["encoding"] == "poisson" else d["encoding"]
    return out


def load_inputs(path: str, net, option: str = "--input"):
    """Inputs for ``net`` from an ``.npy`` array, or an ``.npz`` holding ``inputs``, one
    array per input population, or a single array."""
    data = load_arrays(path, option)
    if not isinstance(data, dict):
        return data
    if "manifest.json" in data:
        raise UsageError(f"{option}: {path!r} is a network file (.snn), not input arrays")
    if "inputs" in data:
        return data["inputs"]
    names = [p.name for p in net.inputs]
    if set(data) == set(names):
        return data
    if len(data) == 1:
        return next(iter(data.values()))
    raise UsageError(f"{option}: {path!r} holds {sorted(data)}; expected 'inputs' "
                     f"[steps, batch, {net.n_inputs}] or one array per input population "
                     f"{names}")


NOT_RESULTS = {".png": "a picture: --plot draws one", ".jpg": "a picture: --plot draws one",
               ".svg": "a picture: --plot draws one", ".pdf": "a picture: --plot draws one",
               ".snn": "a network file", ".nir": "a NIR graph", ".npy": "a single array"}


def output_file(path: str | None, option: str, image: bool = False,
                result: bool = False) -> Path | None:
    """Check, before any work, that ``path`` can be written: its folder exists and takes a
    file, and it is not a folder itself. An existing file is replaced (atomically, when the
    work is done). ``image``: the suffix must be an image type matplotlib writes. ``result``:
    a result archive, not named as a picture, network or array (which it would overwrite)."""
    if path is None:
        return None
    p = Path(path)
    if result and p.suffix.lower() in NOT_RESULTS:
        raise UsageError(f"{option}: {path!r} names {NOT_RESULTS[p.suffix.lower()]}; the "
                         f"result is an .npz archive (e.g. --out {p.with_suffix('.npz')})")
    if p.is_dir():
        raise UsageError(f"{option}: {path!r} is a folder; name a file")
    folder = p.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"{option}: cannot write {path!r}: the folder {str(folder)!r} {what}")
    _writable(folder, option, path)
    if image:
        from .. import plot

        try:
            plot.image_format(p)
        except SnnkitError as e:
            raise UsageError(f"{option}: {e}") from e
    return p


def output_dir(path: str, option: str) -> Path:
    """Check that ``path`` is, or can be made, a folder (with its parents; the command makes
    it when it writes)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{option}: {path!r} exists and is not a folder")
    for up in [p, *p.parents]:
        if up.exists():
            if not up.is_dir():
                raise UsageError(f"{option}: cannot make {path!r}: {str(up)!r} is not a folder")
            _writable(up, option, path)
            break
    return p


def _writable(folder: Path, option: str, path: str) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise UsageError(f"{option}: cannot write {path!r} in {str(folder)!r} "
                         f"({e.strerror or e})") from e


# --------------------------------------------------------------------------- ports


def port_url(text: str, option: str = "--port", lowest: int = 1) -> str:
    """A pyserial URL from ``5555``, ``localhost:5555`` or a URL / device path as given
    (:func:`snnkit.device.port_url`)."""
    from ..device import port_url as url

    try:
        return url(text, lowest)
    except ValueError as e:
        raise UsageError(f"{option}: {e}") from None


def socket_address(text: str, option: str = "--port") -> tuple[str, int]:
    """``(host, port)`` to serve on, from ``5555``, ``localhost:5555`` or ``socket://H:P``."""
    url = port_url(text, option, lowest=0)
    m = re.fullmatch(r"socket://(?P<host>[^:/]+|\[[^\]]+\]):(?P<port>\d+)/?", url)
    if m is None:
        raise UsageError(f"{option}: expected a TCP port: 5555, localhost:5555 or "
                         f"socket://HOST:PORT, got {text!r} (for a pseudo-terminal use --pty)")
    port = int(m["port"])
    if not 0 <= port < 65536:
        raise UsageError(f"{option}: port {port} is outside 0..65535")
    from ..emulated_board import ipv4

    try:
        return ipv4(m["host"].strip("[]")), port
    except DeviceError as e:
        raise UsageError(f"{option}: {e}") from None


def add_port_args(parser: argparse.ArgumentParser) -> None:
    """``--port URL --baud N --timeout S``, shared by the commands that talk to a board."""
    parser.add_argument("--port", default="5555",
                        help="the board: 5555 or HOST:5555 (an emulated board, socket://), "
                             "a pyserial URL (socket://host:port), /dev/ttyUSB0, a pty path "
                             "(default: the emulated board of snnkit emulate, on port 5555)")
    parser.add_argument("--baud", type=int, default=1_000_000, choices=(1_000_000, 3_000_000),
                        help="UART bit rate")
    parser.add_argument("--timeout", type=float, default=2.0,
                        help="seconds the board may stay silent (> 0)")


def check_port_args(args: argparse.Namespace) -> None:
    """Refuse a ``--timeout`` that is not a positive number of seconds, before any work: the
    link would fail later, and 0 reads as a silent board."""
    check_positive("--timeout", args.timeout, "seconds")


# --------------------------------------------------------------------------- misc


def add_size_args(parser: argparse.ArgumentParser) -> None:
    """``--n-max N`` ... : hardware sizes, each defaulting to the smallest that fits."""
    for name in SIZES:
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None,
                            help=f"hardware {name.upper()} (default: smallest that fits)")


def sizes(args: argparse.Namespace) -> dict[str, int]:
    """The hardware sizes given on the command line (for ``HardwareConfig.for_network``)."""
    out = {k: getattr(args, k) for k in SIZES if getattr(args, k) is not None}
    for k, v in out.items():
        check_int("--" + k.replace("_", "-"), v, 0 if k == "d_max" else 1)
    return out


def check_int(option: str, value: int | None, lo: int, hi: int | None = None) -> None:
    """Refuse (exit 2, before any work) an integer option outside ``[lo, hi]``; None: not
    given. What the library would reject later, or silently misuse, named by its option."""
    if value is None or (lo <= value and (hi is None or value <= hi)):
        return
    valid = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
    raise UsageError(f"{option}: must be an integer {valid}, got {value}")


def check_positive(option: str, value: float | None, unit: str = "") -> None:
    """Refuse (exit 2) a number option that is not positive and finite (0, a negative, nan
    or inf duration, clock or rate); None: not given."""
    if value is not None and not 0 < value < math.inf:
        of = f" of {unit}" if unit else ""
        raise UsageError(f"{option}: must be a positive number{of}, got {value:g}")


def check_cores(option: str, value: int) -> None:
    """Refuse a core count the multi-core design cannot have: it needs a power of two."""
    if value < 1 or value & (value - 1):
        raise UsageError(f"{option}: must be a power of two (1, 2, 4, 8, ...), got {value}")


def say(msg: str) -> None:
    """Print a line of a command's report. If the reader of stdout has left (``snnkit run
    ... | head``), the rest of the report goes nowhere and the work goes on to save what
    was asked for: only a command that just prints (``snnkit info``) ends there."""
    try:
        print(msg, flush=True)
    except BrokenPipeError:
        if not stdout_closed():
            raise
        stdout_to_devnull()


def stdout_to_devnull() -> None:
    """Send the rest of stdout nowhere (its reader has gone)."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader has gone (Linux flags it POLLERR)."""
    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in poll.poll(0))
    except (AttributeError, OSError, ValueError):
        return False
