"""PNG plots of results and networks (matplotlib, headless). The image type follows the
file's suffix (``.png``, ``.svg``, ``.pdf`` ...); bad names and arguments raise
:class:`~snnkit.errors.SimulationError` naming them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import SimulationError
from .fileformat import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def raster(result, path, sample: int = 0, populations=None, title: str | None = None) -> Path:
    """Spike raster of one sample: one row per neuron, populations stacked in order."""
    _result(result, "raster")
    names = list(populations or result.spikes)
    for name in names:
        result._spikes(name)  # names the population when it is not in the result
    _check_sample(result, sample)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 0.6 + 0.25 * len(names) + 3))
    offset, ticks = 0, []
    for k, name in enumerate(names):
        s = result.spikes[name][:, sample].cpu().numpy()
        t, n = np.nonzero(s)
        ax.scatter(t, n + offset, s=2, marker="|", color=f"C{k}", label=name)
        ticks.append(offset + s.shape[1] / 2)
        offset += s.shape[1] + 2
    ax.set_yticks(ticks, names)
    ax.set_xlabel("time step")
    ax.set_xlim(-0.5, result.steps - 0.5)
    ax.set_title(title or f"spike raster ({result.backend}, sample {sample})")
    return _save(fig, path)


def membrane(result, path, population: str, neurons=(0,), sample: int = 0,
             threshold=None) -> Path:
    """Membrane potential traces of a few neurons (needs ``record=("v",)``)."""
    _result(result, "membrane")
    if population not in result.spikes and population not in result.states:
        raise SimulationError(f"membrane: no population {population!r} in this result "
                              f"(populations: {list(result.spikes)})")
    if "v" not in result.states.get(population, {}):
        raise SimulationError(f"membrane: no recorded 'v' for {population!r}; simulate "
                              f"with record=('v',) (command line: --record v)")
    _check_sample(result, sample)
    v = result.real(result.states[population]["v"][:, sample]).cpu().numpy().astype(float)
    bad = [n for n in neurons if not 0 <= n < v.shape[1]]
    if bad:
        raise SimulationError(f"membrane: neurons {bad} are outside {population!r} "
                              f"(0..{v.shape[1] - 1})")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for n in neurons:
        ax.plot(v[:, n], label=f"{population}[{n}]")
    if threshold is not None:
        ax.axhline(threshold, color="k", ls="--", lw=0.8, label="threshold")
    ax.set_xlabel("time step")
    ax.set_ylabel("v")
    ax.legend(loc="upper right", fontsize="small")
    ax.set_title(f"membrane potential ({result.backend})")
    return _save(fig, path)


def weights(w, path, title: str = "weights", image_shape=None, columns: int = 10) -> Path:
    """A weight matrix ``[target, source]`` as a heat map, or as one image per target neuron
    when ``image_shape`` (e.g. (8, 8)) is given."""
    if hasattr(w, "spikes"):
        raise SimulationError("weights: expected a [target, source] matrix, got a Result: "
                              "pass one projection's weights of one sample, e.g. "
                              "res.weights['in->out'][0]")
    try:
        w = np.asarray(w.cpu() if hasattr(w, "cpu") else w, float)
    except (TypeError, ValueError) as e:
        raise SimulationError(f"weights: expected a [target, source] matrix of numbers "
                              f"({e})") from None
    if w.ndim != 2:
        raise SimulationError(f"weights: expected a [target, source] matrix, got shape "
                              f"{w.shape} (a result's weights are [batch, target, source]: "
                              f"pass one sample, e.g. res.weights[name][0])")
    plt = _plt()
    if image_shape is None:
        fig, ax = plt.subplots(figsize=(6, 5))
        im = ax.imshow(w, aspect="auto", cmap="coolwarm",
                       vmin=-np.abs(w).max(), vmax=np.abs(w).max())
        ax.set_xlabel("source neuron")
        ax.set_ylabel("target neuron")
        fig.colorbar(im, ax=ax)
        ax.set_title(title)
        return _save(fig, path)
    n = w.shape[0]
    rows = -(-n // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.9, rows * 0.9))
    for k, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis("off")
        if k < n:
            ax.imshow(w[k].reshape(image_shape), cmap="hot")
    fig.suptitle(title)
    return _save(fig, path)


def curve(xs, series: dict, path, xlabel: str, ylabel: str, title: str = "") -> Path:
    """Line plot of several named series against ``xs`` (e.g. accuracy against T)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ys in series.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    return _save(fig, path)


def sweep(rows: list[dict], params: list[str], metric: str, path, title: str = "") -> Path:
    """A sweep's metric against each varied parameter (one panel each): every configuration
    a dot, the mean over the others a line (numbers on a log axis when they span > 20x)."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(params), figsize=(3.6 * len(params) + 0.6, 3.4),
                             squeeze=False)
    for ax, name in zip(axes[0], params):
        values = [r[name] for r in rows]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        keys = sorted(set(values)) if numeric else sorted(set(map(str, values)))
        pos = {k: (k if numeric else i) for i, k in enumerate(keys)}
        xs = [pos[v if numeric else str(v)] for v in values]
        ys = [r[metric] for r in rows]
        ax.scatter(xs, ys, s=14, alpha=0.6)
        means = [np.mean([y for x, y in zip(xs, ys) if x == pos[k]]) for k in keys]
        ax.plot([pos[k] for k in keys], means, color="C1", lw=1.2)
        if numeric and min(keys) > 0 and max(keys) / min(keys) > 20:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(keys)), keys, rotation=30)
        ax.set_xlabel(name)
        ax.set_ylabel(metric)
    fig.suptitle(title)
    return _save(fig, path)


def _check_sample(result, sample: int) -> None:
    if not 0 <= sample < result.batch:
        raise SimulationError(f"sample: {sample} is outside the result's batch "
                              f"(0..{result.batch - 1})")


def image_format(path) -> str:
    """The image type matplotlib writes for ``path``'s suffix (``png`` ...).

    Raises
    ------
    SimulationError : no suffix, or one matplotlib does not write
    """
    _plt()
    from matplotlib.backend_bases import FigureCanvasBase

    kinds = FigureCanvasBase.get_supported_filetypes()
    fmt = Path(path).suffix.lstrip(".").lower()
    if fmt not in kinds:
        raise SimulationError(f"{path}: name an image file ending in one of "
                              f"{', '.join('.' + k for k in sorted(kinds))}")
    return fmt


def _save(fig, path) -> Path:
    """Write ``fig`` to ``path`` whole or not at all (a missing folder named as given)."""
    path = Path(path)
    plt = _plt()
    try:
        fmt = image_format(path)
        fig.tight_layout()
        atomic_path(path, lambda tmp: fig.savefig(tmp, dpi=110, format=fmt),
                    suffix=".tmp." + fmt)
    finally:
        plt.close(fig)
    return path


def _result(result, what: str) -> None:
    """Refuse what is not a result (a dict, a file name) before reading it as one."""
    if not all(hasattr(result, k) for k in ("spikes", "states", "batch", "steps")):
        raise SimulationError(f"{what}: expected a snnkit Result (from simulate / run, or "
                              f"Result.load), got {type(result).__name__}")


def training(history, path, title: str = "training") -> Path:
    """Loss (left) and accuracy (right) per epoch of a :class:`snnkit.training.History`."""
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
    ep = np.arange(1, len(history.loss) + 1)
    a1.plot(ep, history.loss, marker="o", ms=3)
    a1.set_xlabel("epoch")
    a1.set_ylabel("training loss")
    a1.grid(alpha=0.3)
    a2.plot(ep, history.train_accuracy, marker="o", ms=3, label="train")
    test = [np.nan if a is None else a for a in history.test_accuracy]
    if not np.all(np.isnan(test)):
        a2.plot(ep, test, marker="o", ms=3, label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.grid(alpha=0.3)
    a2.legend()
    from matplotlib.ticker import MaxNLocator

    for ax in (a1, a2):  # epochs are whole numbers
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    return _save(fig, path)
