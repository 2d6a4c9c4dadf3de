"""Hyper-parameter sweeps on Ray Tune: :func:`sweep` and ``snnkit sweep CONFIG``.

A sweep runs one *task* (a function ``params -> {metric: number}``, see
:mod:`snnkit.sweep_tasks`) over a grid and/or random draws of its parameters, each
configuration a Ray Tune trial (one CPU each; locally by default, or on a Ray cluster given its
address). Ray schedules, records and resumes: snnkit only describes the space and collects a
table (CSV) and a plot. A configuration file (TOML or JSON)::

    name = "stdp-seeds"
    task = "stdp"                  # convert | train | stdp | "package.module:function"
    metric = "accuracy"            # plotted; best = max (mode = "max") or min
    samples = 1                    # draws of [space] per grid point (repeats of the grid)
    [fixed]                        # the same for every configuration
    quick = true
    [grid]                         # every combination
    seed = [0, 1, 2, 3]
    [space]                        # random draws: uniform, loguniform, randint [lo, hi]; choice
    a_plus = {loguniform = [0.01, 0.1]}

Results go to ``OUT/NAME/``: Ray's experiment (what a resume reads), ``results.csv`` and
``results.png``. Running the same sweep again resumes it: finished configurations are kept,
unfinished and failed ones run (Ray Tune's ``Tuner.restore``).
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import json
import math
import os
import re
import signal
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import SweepError

DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
_RAY: dict = {}  # how this process started Ray: {"address": ..., "workers": ...}


@dataclass
class SweepConfig:
    """A sweep: the task, the parameters that vary and how, the metric (module docstring)."""

    name: str
    task: str
    metric: str = "accuracy"
    mode: str = "max"
    samples: int = 1
    seed: int = 0  # of the random draws
    fixed: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)
    space: dict = field(default_factory=dict)

    @classmethod
    def load(cls, source) -> SweepConfig:
        """From a dict, or a ``.toml`` / ``.json`` file (name defaults to the file's stem).

        Raises
        ------
        SweepError : unreadable file, unknown keys, bad values (the key is named)
        """
        if isinstance(source, SweepConfig):
            return source
        name = None
        if isinstance(source, (str, Path)):
            path = Path(source)
            try:
                text = path.read_text()
                if path.suffix == ".json":
                    data = json.loads(text)
                else:
                    import tomllib

                    data = tomllib.loads(text)
            except (OSError, ValueError) as e:
                raise SweepError(f"sweep config {str(path)!r}: cannot read ({e})") from e
            name = path.stem
        elif isinstance(source, dict):
            data = dict(source)
        else:
            raise SweepError(f"sweep config: expected a file or a dict, got "
                             f"{type(source).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SweepError(f"sweep config: unknown keys {unknown} (known: {sorted(known)})")
        data.setdefault("name", name)
        if not data.get("name") or not data.get("task"):
            raise SweepError("sweep config: 'name' and 'task' are required")
        cfg = cls(**data)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.mode not in ("max", "min"):
            raise SweepError(f"sweep config.mode: 'max' or 'min', got {self.mode!r}")
        if not isinstance(self.samples, int) or self.samples < 1:
            raise SweepError(f"sweep config.samples: a positive integer, got {self.samples!r}")
        if not set(self.name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_.-"):
            raise SweepError(f"sweep config.name: letters, digits, '_', '.', '-'; got "
                             f"{self.name!r}")
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise SweepError(f"sweep config.grid.{key}: a non-empty list, got {values!r}")
        for key, spec in self.space.items():
            if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in \
                    DISTRIBUTIONS:
                raise SweepError(f"sweep config.space.{key}: one of {list(DISTRIBUTIONS)} "
                                 f"with its arguments, got {spec!r}")
            kind, args = next(iter(spec.items()))
            if kind != "choice" and (not isinstance(args, list) or len(args) != 2):
                raise SweepError(f"sweep config.space.{key}.{kind}: [low, high], got {args!r}")
        both = sorted(set(self.grid) & set(self.space) | set(self.fixed) & (set(self.grid)
                                                                            | set(self.space)))
        if both:
            raise SweepError(f"sweep config: {both} given in more than one of fixed / grid / "
                             f"space")
        task_function(self.task)
        from .sweep_tasks import METRICS, PARAMS, take

        if self.task in PARAMS:  # a built-in: its parameters and metrics are known
            try:
                take(dict.fromkeys([*self.fixed, *self.varied]), self.task)
            except SweepError as e:
                raise SweepError(f"sweep config: {e}") from None
            if self.metric not in METRICS[self.task]:
                raise SweepError(f"sweep config.metric: task {self.task!r} returns "
                                 f"{list(METRICS[self.task])}, not {self.metric!r}")

    @property
    def varied(self) -> list[str]:
        return list(self.grid) + list(self.space)

    @property
    def size(self) -> int:
        """Configurations the sweep runs."""
        return math.prod(len(v) for v in self.grid.values()) * self.samples

    def param_space(self) -> dict:
        from ray import tune

        out = {k: tune.grid_search(v) for k, v in self.grid.items()}
        for k, spec in self.space.items():
            kind, args = next(iter(spec.items()))
            out[k] = tune.choice(args) if kind == "choice" else getattr(tune, kind)(*args)
        return out


def task_function(spec: str):
    """The task a sweep runs: a built-in name or ``"package.module:function"``.

    Raises
    ------
    SweepError : no such task
    """
    from .sweep_tasks import BUILTIN

    if spec in BUILTIN:
        return BUILTIN[spec]
    module, _, name = str(spec).partition(":")
    try:
        fn = getattr(importlib.import_module(module), name) if name else None
    except (ImportError, AttributeError, ValueError) as e:
        raise SweepError(f"sweep config.task: cannot import {spec!r} ({e})") from e
    if not callable(fn):
        raise SweepError(f"sweep config.task: {spec!r} is neither a built-in task "
                         f"{sorted(BUILTIN)} nor 'package.module:function'")
    return fn


def _trial(params: dict, task: str, fixed: dict) -> None:
    """One configuration, inside a Ray worker: the task's metrics reported to Tune."""
    import torch
    from ray import tune

    torch.set_num_threads(1)  # one CPU per trial: workers scale instead of threads
    metrics = task_function(task)({**fixed, **params})
    if not isinstance(metrics, dict):
        raise SweepError(f"task {task!r} returned {type(metrics).__name__}, not a dict")
    tune.report({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})


@dataclass
class SweepResult:
    """What :func:`sweep` returns: one row per configuration, and the files written."""

    config: SweepConfig
    rows: list[dict]  # varied parameters, metrics, "status" ("ok" or the error), "seconds"
    csv: Path
    plot: Path | None
    directory: Path

    @property
    def errors(self) -> int:
        return sum(r["status"] != "ok" for r in self.rows)

    def best(self) -> dict | None:
        ok = [r for r in self.rows if r["status"] == "ok" and self.config.metric in r]
        pick = max if self.config.mode == "max" else min
        return pick(ok, key=lambda r: r[self.config.metric]) if ok else None


def _start_ray(address: str | None, workers: int | None) -> None:
    import ray

    want = {"address": address, "workers": workers}
    if ray.is_initialized():
        if _RAY == want or (not _RAY and address is None and workers is None):
            return
        ray.shutdown()
    env = {"PYTHONPATH": os.pathsep.join(p for p in [os.getcwd()] + sys.path if p)}
    opts = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    main = threading.current_thread() is threading.main_thread()
    term = signal.getsignal(signal.SIGTERM) if main else None
    if address is None:  # a local Ray with `workers` CPUs; workers see this process's modules
        ray.init(num_cpus=workers or os.cpu_count(), runtime_env={"env_vars": env}, **opts)
    else:
        ray.init(address=address, **opts)
    if main and term is not None:  # Ray's SIGTERM handler dumps a stack and exits 1: the
        signal.signal(signal.SIGTERM, term)  # caller's stays (snnkit's CLI: a clean 143)
    _RAY.clear()
    _RAY.update(want)


def sweep(config, *, address: str | None = None, workers: int | None = None,
          out="sweeps", resume: bool = True) -> SweepResult:
    """Run a sweep on Ray Tune; write ``results.csv`` and ``results.png``.

    Parameters
    ----------
    config : a :class:`SweepConfig`, a dict, or a TOML / JSON file (module docstring)
    address : a Ray cluster (``"ray://host:10001"``, ``"auto"``); None: a local Ray
    workers : trials at once (default: one per CPU Ray has)
    out : folder for the sweep (``OUT/NAME/``)
    resume : continue a sweep of the same name and configuration in ``out`` (finished
        configurations are kept, unfinished and failed ones run); False: start anew

    Returns
    -------
    :class:`SweepResult` (a failed configuration is a row whose status is the error)

    Raises
    ------
    SweepError : a bad configuration, or a sweep of that name in ``out`` with another one
    """
    cfg = SweepConfig.load(config)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SweepError(f"workers: a positive integer, got {workers!r}")
    from ray import tune

    root = Path(out).resolve()
    exp = root / cfg.name
    saved = exp / "sweep.json"
    restore = resume and saved.exists() and tune.Tuner.can_restore(str(exp))
    if restore and json.loads(saved.read_text()) != asdict(cfg):
        raise SweepError(f"{exp}: a sweep named {cfg.name!r} with another configuration is "
                         f"there; resume=False (--no-resume) starts it anew")
    _start_ray(address, workers)
    trainable = tune.with_resources(
        tune.with_parameters(_trial, task=cfg.task, fixed=cfg.fixed), {"cpu": 1})
    if restore:
        tuner = tune.Tuner.restore(str(exp), trainable, resume_errored=True)
    else:
        from ray.tune.search.basic_variant import BasicVariantGenerator

        tuner = tune.Tuner(
            trainable, param_space=cfg.param_space(),
            tune_config=tune.TuneConfig(
                num_samples=cfg.samples, reuse_actors=True,
                search_alg=BasicVariantGenerator(random_state=cfg.seed,
                                                 max_concurrent=workers or 0)),
            run_config=tune.RunConfig(name=cfg.name, storage_path=str(root), verbose=0))
    with _sigterm_as_sigint() as terminated:
        grid = tuner.fit()
    exp.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    rows, unfinished = [], 0
    for r in grid:
        metrics = r.metrics or {}
        if r.config is None or (r.error is None and not _metric_names(metrics)):
            unfinished += 1  # Tune stopped by Ctrl-C before the configuration reported
            continue
        row = {k: r.config.get(k) for k in cfg.varied}
        row.update({k: v for k, v in metrics.items() if k in _metric_names(metrics)})
        row["status"] = "ok" if r.error is None else f"error: {_error_text(r.error)}"
        row["seconds"] = round(float(metrics.get("time_total_s", 0.0)), 3)
        rows.append(row)
    rows.sort(key=lambda r: tuple(str(r[k]) for k in cfg.varied))
    csv_path = _write_csv(rows, exp / "results.csv")
    plot_path = _plot(cfg, rows, exp / "results.png")
    if unfinished or terminated:  # Tune takes Ctrl-C as "stop" and returns what it has
        print(f"sweep interrupted: {len(rows)} of {len(rows) + unfinished} configurations "
              f"done, in {csv_path}; the same command resumes the rest", file=sys.stderr,
              flush=True)
        if terminated:  # the SIGTERM, now that the rows are saved, to whoever handles it
            signal.raise_signal(signal.SIGTERM)
        raise KeyboardInterrupt
    ok = [r for r in rows if r["status"] == "ok"]
    if ok and not any(cfg.metric in r for r in ok):  # a task of the user's: known only now
        names = sorted({k for r in ok for k in r} - set(cfg.varied) - {"status", "seconds"})
        raise SweepError(f"sweep config.metric: task {cfg.task!r} returned {names}, not "
                         f"{cfg.metric!r} (the results are in {csv_path})")
    return SweepResult(cfg, rows, csv_path, plot_path, exp)


@contextlib.contextmanager
def _sigterm_as_sigint():
    """While Tune runs, SIGTERM is handed to it as SIGINT, which it takes as "stop and return
    what finished" (raised through Tune as an exception, it lost every row); yields a list
    that is not empty once a SIGTERM came."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def on_term(signum, frame):
        got.append(signum)
        os.kill(os.getpid(), signal.SIGINT)

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield got
    finally:
        signal.signal(signal.SIGTERM, old)


def _error_text(err: BaseException) -> str:
    """A failed configuration's error as the task raised it (Ray wraps it in its worker's
    header, in colour, with the traceback)."""
    cause = getattr(err, "cause", None)
    err = cause if isinstance(cause, BaseException) else err
    lines = [ln for ln in re.sub(r"\x1b\[[0-9;]*m", "", str(err)).splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[-1].strip() if lines else ''}"


def _metric_names(metrics: dict) -> set[str]:
    """The task's own metrics among what Tune records (it adds its bookkeeping)."""
    tune_keys = {"timestamp", "checkpoint_dir_name", "done", "training_iteration", "trial_id",
                 "date", "time_this_iter_s", "time_total_s", "pid", "hostname", "node_ip",
                 "time_since_restore", "iterations_since_restore", "config",
                 "experiment_tag"}
    return {k for k, v in metrics.items() if k not in tune_keys and isinstance(v, (int, float))}


def _write_csv(rows: list[dict], path: Path) -> Path:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def _plot(cfg: SweepConfig, rows: list[dict], path: Path) -> Path | None:
    ok = [r for r in rows if r["status"] == "ok" and cfg.metric in r]
    if not ok or not cfg.varied:
        return None
    from .plot import sweep as plot_sweep

    return plot_sweep(ok, cfg.varied, cfg.metric, path, title=f"sweep {cfg.name}: {cfg.task}")
