"""Turn data into input arrays ``[steps, batch, inputs]`` for :func:`snnkit.simulate`.

Only :func:`poisson` is random: it draws fresh spikes on every call unless given a ``seed``.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import SimulationError, count


def _values(x, label, lo=None, hi=None) -> np.ndarray:
    arr = np.asarray(x, np.float64)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2:
        raise SimulationError(f"{label}: expected [batch, inputs] or [inputs], "
                              f"got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SimulationError(f"{label}: contains NaN or inf")
    if lo is not None and (arr.min() < lo or arr.max() > hi):
        raise SimulationError(f"{label}: values must be in [{lo}, {hi}], got "
                              f"[{arr.min():g}, {arr.max():g}]")
    return arr


def poisson(rates, steps: int, seed: int | None = None) -> torch.Tensor:
    """Bernoulli spikes with per-step probability ``rates`` ([batch, inputs] in [0, 1]).

    Each call draws fresh randomness unless ``seed`` is given; with a seed (numpy's PCG64)
    the spikes are the same on every call and every machine.
    """
    p, steps = _values(rates, "rates", 0.0, 1.0), count("steps", steps)
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.random((steps,) + p.shape) < p)


def regular(rates, steps: int, phase=0.0) -> torch.Tensor:
    """Deterministic spikes: input ``k`` fires whenever ``floor(rate * (t+1) + phase)``
    increases. ``phase`` in [0, 1) (a number or one per input, like ``rates``) shifts each
    train, so inputs of equal rate need not fire on the same steps."""
    p, steps = _values(rates, "rates", 0.0, 1.0), count("steps", steps)
    ph = np.broadcast_to(np.asarray(phase, np.float64), p.shape)
    if not np.all((ph >= 0) & (ph < 1)):
        raise SimulationError("phase: values must be in [0, 1)")
    t = np.arange(1, steps + 1)[:, None, None]
    return torch.from_numpy(np.floor(p * t + ph) > np.floor(p * (t - 1) + ph))


def constant_current(values, steps: int) -> torch.Tensor:
    """The same real values on every step, for inputs declared with ``encoding="current"``."""
    v, steps = _values(values, "values"), count("steps", steps)
    return torch.from_numpy(np.broadcast_to(v, (steps,) + v.shape).copy())


def events(event_list, steps: int, batch: int, n_inputs: int) -> torch.Tensor:
    """Spikes from explicit events ``(step, sample, input)``."""
    steps, batch, n_inputs = count("steps", steps), count("batch", batch), count(
        "n_inputs", n_inputs)
    out = torch.zeros(steps, batch, n_inputs, dtype=torch.bool)
    for k, ev in enumerate(event_list):
        try:
            t, b, i = (int(v) for v in ev)
        except (TypeError, ValueError):
            raise SimulationError(f"events[{k}]: expected (step, sample, input), got {ev!r}")
        if not (0 <= t < steps and 0 <= b < batch and 0 <= i < n_inputs):
            raise SimulationError(f"events[{k}]: {(t, b, i)} is outside "
                                  f"[steps={steps}, batch={batch}, inputs={n_inputs}]")
        out[t, b, i] = True
    return out
