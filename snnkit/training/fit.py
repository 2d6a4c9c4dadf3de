"""Training and evaluating an :class:`~snnkit.training.SNN` on labelled data.

A sample is either a vector of values (turned into an input sequence of ``steps`` steps by
an encoder: deterministic rate code, Poisson spikes, or a constant current) or a sequence
``[steps, inputs]`` given as is. The class is the output population's neuron with most
spikes (ties: the lowest index), as :meth:`snnkit.result.Result.predict` and the board read
it. Training is deterministic for a seed and resumable from its checkpoint file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import NetworkError, SimulationError, count
from ..fileformat import atomic_path

ENCODINGS = ("regular", "poisson", "current", "sequence")
DEFAULT_STEPS = 8  # steps per encoded sample when none are given: docs/training.md's digits T
LOSSES = ("ce_count", "mse_count")
MSE_RATES = (0.8, 0.1)  # mse_count: target spikes per step of the right and the other classes


@dataclass
class History:
    """Per epoch: mean training loss and accuracy, test accuracy (None without test data),
    seconds, learning rate."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float | None] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- data


def encode(x, steps: int | None, encoding: str, seed: int | None = 0) -> torch.Tensor:
    """Inputs ``[steps, batch, inputs]`` for samples ``x``.

    regular / poisson : values in [0, 1] as spike rates (:func:`snnkit.encoders.regular`, or
        Bernoulli spikes seeded by ``seed``); current : the values on every step;
    sequence : ``x`` is ``[batch, steps, inputs]`` already (spikes or currents).
    """
    from .. import encoders

    if encoding == "sequence":
        x = torch.as_tensor(x)
        return x.transpose(0, 1)
    if encoding == "regular":
        return encoders.regular(x, steps)
    if encoding == "poisson":
        return encoders.poisson(x, steps, seed)
    return encoders.constant_current(x, steps)


def check_data(model, x, y, steps, encoding, output, names=("x", "y")
               ) -> tuple[np.ndarray, np.ndarray, str, int]:
    """Validate a labelled data set for ``model``; returns ``(x, y, output, steps)``.
    ``names``: what the errors call x and y (fit's test set: "test x", "test y").

    Raises
    ------
    SimulationError : shapes that do not match the network, labels out of range, bad steps
    NetworkError : an output population that cannot be trained (names what is missing)
    """
    net, (nx, ny) = model._source, names
    if encoding not in ENCODINGS:
        raise SimulationError(f"encoding: must be one of {list(ENCODINGS)}, got {encoding!r}")
    output = output_population(model, output)
    try:
        x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
        y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
    except Exception as e:  # noqa: BLE001
        raise SimulationError(f"data: cannot be read as arrays ({e})")
    if x.dtype.kind not in "biuf":
        raise SimulationError(f"{nx}: expected numbers, got dtype {x.dtype}")
    want = 3 if encoding == "sequence" else 2
    shape = net.inputs[0].shape if len(net.inputs) == 1 else None
    if encoding != "sequence" and shape is not None and x.shape[1:] == tuple(shape):
        x = x.reshape(len(x), -1)  # images [N, C, H, W] of a CNN, as the network indexes them
    if x.ndim != want:
        what = "[samples, steps, inputs]" if want == 3 else "[samples, inputs]"
        hint = ("; sequences [samples, steps, inputs] train with encoding='sequence'"
                if want == 2 and x.ndim == 3 else "")
        raise SimulationError(f"{nx}: expected shape {what} for encoding {encoding!r}, got "
                              f"{x.shape}{hint}")
    if x.shape[-1] != net.n_inputs:
        raise SimulationError(f"{nx}: {x.shape[-1]} values per sample (step), the network has "
                              f"{net.n_inputs} inputs")
    if y.ndim != 1 or len(y) != len(x):
        raise SimulationError(f"{ny}: expected one label per sample ({len(x)}), got shape "
                              f"{y.shape}")
    if len(x) == 0:
        raise SimulationError("data: no samples")
    bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(1))
    if bad.size:
        raise SimulationError(f"{nx}: NaN or inf in sample {bad[0]} ({bad.size} samples)")
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise SimulationError(f"{ny}: labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64)
    n_out = net.population(output).size
    bad = np.flatnonzero((y < 0) | (y >= n_out))
    if bad.size:
        raise SimulationError(f"{ny}: label {y[bad[0]]} at index {bad[0]} is outside "
                              f"[0, {n_out}) (output population {output!r} has {n_out} neurons)")
    if encoding == "sequence":
        if steps is not None and steps != x.shape[1]:
            raise SimulationError(f"steps: the sequences have {x.shape[1]} steps, got {steps}")
        steps = x.shape[1]
    elif steps is None:
        steps = DEFAULT_STEPS
    steps = count("steps", steps)
    if encoding in ("regular", "poisson") and (x.min() < 0 or x.max() > 1):
        raise SimulationError(f"{nx}: encoding {encoding!r} needs values in [0, 1] "
                              f"(spike rates), got [{x.min():g}, {x.max():g}]")
    return x, y, output, int(steps)



def _real(v) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

def output_population(model, output: str | None) -> str:
    """The population whose spike counts are the classes (default: the last one), checked to
    depend on something trainable.

    Raises
    ------
    NetworkError : unknown, an input, or no trainable parameter reaches it (which one)
    """
    net = model._source
    pops = net.neuron_populations
    if output is None:
        output = pops[-1].name
    if not isinstance(output, str) or output not in {p.name for p in net.populations}:
        raise NetworkError(f"output: no population named {output!r} (neuron populations: "
                           f"{[p.name for p in pops]})")
    if net.population(output).is_input:
        raise NetworkError(f"output: {output!r} is an input population; its spikes are data, "
                           f"not differentiable")
    reached = set()
    for k, pop in enumerate(pops):  # network order: sources first, except recurrences
        if model.pops[k].trained:
            reached.add(pop.name)
    changed = True
    while changed:
        changed = False
        for pr in net.projections:
            if pr.target not in reached and (
                    pr.source in reached or "weight" in model.trainable):
                reached.add(pr.target)
                changed = True
    if output not in reached:
        raise NetworkError(f"output: nothing trainable reaches population {output!r} (no "
                           f"incoming projection with trainable weights, no trainable "
                           f"neuron parameter on the way); the loss would have no gradient")
    return output


def load_data(spec: str):
    """``(x_train, y_train, x_test | None, y_test | None)`` from "digits" (the project's fixed
    split) or an ``.npz`` holding ``x_train``, ``y_train`` and optionally ``x_test``,
    ``y_test``.

    Raises
    ------
    SimulationError : no such file, or keys missing
    """
    if spec == "digits":
        from ..datasets import digits

        return digits()
    path = Path(spec)
    if not path.is_file():
        raise SimulationError(f"data: no such file {spec!r} (or use 'digits')")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x_train", "y_train") if k not in z.files]
            if missing:
                raise SimulationError(f"data: {spec!r} has no {missing} (keys: {z.files})")
            test = ("x_test" in z.files) + ("y_test" in z.files)
            if test == 1:
                raise SimulationError(f"data: {spec!r} has only one of x_test, y_test")
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")
                      if k in z.files}
    except SimulationError:
        raise
    except (OSError, ValueError) as e:
        raise SimulationError(f"data: cannot read {spec!r} ({e})") from e
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise SimulationError(f"data: {spec!r} array {k!r} holds {a.dtype} values, not "
                                  f"numbers")
    return (arrays["x_train"], arrays["y_train"], arrays.get("x_test"), arrays.get("y_test"))


# --------------------------------------------------------------------------- loss


def loss_fn(name):
    """``f(counts [batch, classes], y) -> loss``: "ce_count" (cross-entropy of the spike
    counts as logits) or "mse_count" (squared error to MSE_RATES x steps); or a callable."""
    if callable(name):
        return name
    if name not in LOSSES:
        raise SimulationError(f"loss: must be one of {list(LOSSES)} or a callable, got {name!r}")
    if name == "ce_count":
        return lambda counts, y, steps: torch.nn.functional.cross_entropy(counts, y)

    def mse(counts, y, steps):
        hi, lo = MSE_RATES
        target = torch.full_like(counts, lo * steps)
        target[torch.arange(len(y)), y] = hi * steps
        return torch.nn.functional.mse_loss(counts, target)

    return mse


# --------------------------------------------------------------------------- evaluate


@torch.no_grad()
def evaluate(model, x, y, *, steps: int | None = None, encoding: str = "regular",
             output: str | None = None, batch_size: int = 256, seed: int = 0) -> dict:
    """Accuracy of ``model`` (in its own arithmetic) on labelled samples.

    Returns
    -------
    dict: ``accuracy``, ``predictions`` (array), ``spikes`` (mean spikes per sample in all
    neuron populations)
    """
    x, y, output, steps = check_data(model, x, y, steps, encoding, output)
    preds, spikes = [], []
    for i in range(0, len(x), batch_size):
        res = model(encode(x[i:i + batch_size], steps, encoding, seed + i))
        preds.append(res.predict(output).cpu().numpy())
        spikes.append(sum(res.spikes[p.name].sum((0, 2)) for p in
                          model._source.neuron_populations).cpu().numpy())
    p = np.concatenate(preds)
    return {"accuracy": float((p == y).mean()), "predictions": p,
            "spikes": float(np.concatenate(spikes).mean())}


# --------------------------------------------------------------------------- fit


def fit(model, x, y, *, epochs: int = 10, steps: int | None = None,
        encoding: str = "regular", output: str | None = None, loss="ce_count",
        lr: float = 1e-3, batch_size: int = 64, weight_decay: float = 0.0, seed: int = 0,
        test=None, checkpoint=None, resume: bool = True, progress: bool = True, plot=None,
        callback=None) -> History:
    """Train ``model`` by backpropagation through time with Adam and a cosine schedule.

    Parameters
    ----------
    model : :class:`~snnkit.training.SNN`
    x, y : samples (see :func:`encode`) and integer labels
    steps : time steps per sample (default ``DEFAULT_STEPS``, 8; sequences: their length)
    encoding : "regular" (deterministic rate code, as the demo and the board are fed),
        "poisson" (Bernoulli spikes, new each epoch: augmentation), "current", "sequence"
    output : the population whose spike counts are the classes (default: the last)
    loss : "ce_count", "mse_count" or ``f(counts, y, steps) -> loss``
    test : ``(x_test, y_test)`` to evaluate after every epoch (always with the "regular" /
        "current" / "sequence" encoding: deterministic)
    checkpoint : a file written atomically after every epoch (model, optimizer, schedule,
        history); with ``resume`` an existing one is continued from its epoch
    plot : a PNG of loss and accuracy per epoch, written atomically after every epoch
    callback : ``f(epoch, history)`` after every epoch; returning True stops training

    Returns
    -------
    :class:`History`

    Raises
    ------
    SimulationError : bad data (shapes, labels out of range), options or steps
    NetworkError : an output no trainable parameter reaches, a checkpoint of another run
    """
    x, y, output, steps = check_data(model, x, y, steps, encoding, output)
    eval_encoding = "regular" if encoding == "poisson" else encoding
    if test is not None:
        if not isinstance(test, (tuple, list)) or len(test) != 2:
            n = f" of {len(test)}" if isinstance(test, (tuple, list)) else ""
            raise SimulationError(f"test: must be a pair (x_test, y_test), got "
                                  f"{type(test).__name__}{n}")
        xt, yt, _, _ = check_data(model, test[0], test[1], steps, eval_encoding, output,
                                  names=("test x", "test y"))
    if not isinstance(epochs, int) or epochs < 1:
        raise SimulationError(f"epochs: must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise SimulationError(f"batch_size: must be a positive integer, got {batch_size!r}")
    if not _real(lr) or lr <= 0:
        raise SimulationError(f"lr: must be a number > 0, got {lr!r}")
    if not _real(weight_decay) or weight_decay < 0:
        raise SimulationError(f"weight_decay: must be a number >= 0, got {weight_decay!r}")
    lossf = loss_fn(loss)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    config = {"epochs": epochs, "steps": steps, "encoding": encoding, "output": output,
              "loss": loss if isinstance(loss, str) else "callable", "lr": lr,
              "batch_size": batch_size, "weight_decay": weight_decay, "seed": seed,
              "samples": len(x), "arithmetic": model.arithmetic, "data": _digest(x, y)}
    history, start = History(), 0
    if checkpoint is not None and resume and Path(checkpoint).exists():
        start, history = _resume(checkpoint, model, opt, sched, config)
    yt_ = torch.as_tensor(y)
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        model.train()
        gen = torch.Generator().manual_seed(seed * 100003 + epoch)
        order = torch.randperm(len(x), generator=gen).numpy()
        total, correct, seen = 0.0, 0, 0
        bar = _bar(progress, len(x), f"epoch {epoch + 1}/{epochs}")
        for b in range(0, len(x), batch_size):
            idx = order[b:b + batch_size]
            inp = encode(x[idx], steps, encoding, seed=seed * 100003 + epoch * 7919 + b)
            res = model(inp)
            counts = res.spikes[output].sum(0)
            target = yt_[idx].to(counts.device)
            lv = lossf(counts, target, steps)
            opt.zero_grad(set_to_none=True)
            lv.backward()
            opt.step()
            total += float(lv.detach()) * len(idx)
            correct += int((counts.detach().argmax(-1) == target).sum())
            seen += len(idx)
            if bar is not None:
                bar.update(len(idx))
                bar.set_postfix(loss=f"{total / seen:.4f}", acc=f"{correct / seen:.3f}")
        lr_now = opt.param_groups[0]["lr"]
        sched.step()
        test_acc = None
        if test is not None:
            model.eval()
            test_acc = evaluate(model, xt, yt, steps=steps, encoding=eval_encoding,
                                output=output)["accuracy"]
        if bar is not None:
            bar.set_postfix(loss=f"{total / seen:.4f}", acc=f"{correct / seen:.3f}",
                            **({} if test_acc is None else {"test": f"{test_acc:.3f}"}))
            bar.close()
        history.loss.append(total / seen)
        history.train_accuracy.append(correct / seen)
        history.test_accuracy.append(test_acc)
        history.seconds.append(time.perf_counter() - t0)
        history.lr.append(lr_now)
        if checkpoint is not None:
            _save(checkpoint, {"epoch": epoch + 1, "model": model.state_dict(),
                               "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                               "history": history.to_dict(), "config": config})
        if plot is not None:
            write_plot(history, plot)
        if callback is not None and callback(epoch + 1, history):
            break
    model.eval()
    return history


def _bar(show: bool, total: int, desc: str):
    if not show:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", leave=True)


def _digest(x, y) -> str:
    """A digest of the training data: another data set of the same size must not resume a
    run (it handed back the old run's model as if trained on the new data)."""
    h = hashlib.sha256()
    for a in (x, y):
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(str((a.dtype, a.shape)).encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _resume(path, model, opt, sched, config) -> tuple[int, History]:
    try:
        ck = torch.load(path, map_location=model.device, weights_only=True)  # no pickled code
        old = ck["config"]
    except Exception as e:  # noqa: BLE001
        # (torch's refusal of pickled objects advises weights_only=False: never for a file
        # that is not ours)
        why = "not a snnkit checkpoint" if "weights_only" in str(e) else str(e)
        raise NetworkError(f"checkpoint: cannot read {str(path)!r} ({why}); delete it or pass "
                           f"(resume=False, snnkit train --no-resume)") from None
    # (checkpoints before the data's digest have none: theirs is not compared)
    diff = [k for k in config if (k in old or k != "data") and old.get(k) != config[k]]
    if diff:
        k = diff[0]
        raise NetworkError(f"checkpoint: {str(path)!r} was written by another run ({k}: "
                           f"{old.get(k)!r} there, {config[k]!r} now); delete it or start over "
                           f"(resume=False, snnkit train --no-resume)"
                           + ("; to train a finished run further, train its network anew "
                              "(SNN(model.network()); snnkit train TRAINED.snn)"
                              if k == "epochs" else ""))
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise NetworkError(f"checkpoint: {str(path)!r} holds another network ({e})")
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    return int(ck["epoch"]), History(**ck["history"])


def _atomic(path, write) -> None:
    """Write through ``write(tmp_path)`` to a temporary file beside ``path`` (its suffix kept:
    matplotlib picks the format from it), then rename: readers see the old file or the new
    one, never half of one; permissions as any new file's."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_path(path, write, suffix=".tmp" + path.suffix)


def _save(path, obj) -> None:
    _atomic(path, lambda tmp: torch.save(obj, tmp))


def write_plot(history: History, path) -> None:
    """Loss and accuracy per epoch as a PNG (:func:`snnkit.plot.training`, which writes
    atomically)."""
    from .. import plot

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    plot.training(history, path)


def write_json(obj, path) -> None:
    _atomic(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=1) + "\n"))
