"""The demo's report rows (``snnkit demo``): one row per path of a part (the ANN, each
simulator, the emulated board), printed as the part runs and written to its summary.json."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Row:
    path: str
    accuracy: float
    spikes: float | None  # mean spikes per sample (inference, sequence) in the converted layers
    ms_per_sample: float
    samples: int


def say(msg: str) -> None:
    print(msg, flush=True)


def timed(fn):
    """``(fn(), seconds it took)``."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0
