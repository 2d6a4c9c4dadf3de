"""A batch of samples run in groups: a long run shows its progress, and an interrupted one
keeps the samples it finished (every sample starts from the same initial state and weights,
so groups give the sample-for-sample result of one run)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import DeviceError
from ..result import Result
from .common import say

TARGET_S = 1.0  # seconds per group once the speed is known: Ctrl-C loses at most this much


def run_in_groups(run: Callable[[dict[str, torch.Tensor]], Result],
                  arrays: dict[str, torch.Tensor], batch: int, *, quiet: bool, desc: str,
                  out: Path | None, metadata: dict) -> Result:
    """``run`` on groups of samples of ``arrays`` ({input: [steps, batch, n]}), first one
    sample, then groups sized to take about :data:`TARGET_S`; return the joined result.

    On Ctrl-C or SIGTERM (a KeyboardInterrupt), or a board lost mid-run (a DeviceError),
    the finished samples are saved to ``out`` when one is given (``metadata`` says how many
    of how many, and why), and the interrupt or error goes on.
    """
    from tqdm.auto import tqdm

    parts: list[Result] = []
    done, size = 0, 1
    bar = tqdm(total=batch, desc=desc, unit="sample", disable=quiet, leave=False)
    try:
        while done < batch:
            hi = min(batch, done + size)
            t0 = time.perf_counter()
            parts.append(run({k: v[:, done:hi] for k, v in arrays.items()}))
            took = max(time.perf_counter() - t0, 1e-6)
            bar.update(hi - done)
            size = max(1, min(4 * (hi - done), int(TARGET_S * (hi - done) / took)))
            done = hi
    except KeyboardInterrupt:
        bar.close()
        _keep(parts, done, batch, out, metadata, "interrupted")
        raise
    except DeviceError as e:
        bar.close()
        _keep(parts, done, batch, out, dict(metadata, error=str(e)), "the board failed")
        raise
    bar.close()
    res = Result.concat(parts)
    res.metadata = dict(metadata)
    return res


def _keep(parts: list[Result], done: int, batch: int, out: Path | None, metadata: dict,
          why: str):
    if out is None:
        say(f"{why} after {done} of {batch} samples (no --out: nothing saved)")
        return
    if not parts:
        say(f"{why} before the first sample finished: {out} not written")
        return
    res = Result.concat(parts)
    res.metadata = dict(metadata, interrupted=True, samples_done=done, samples_asked=batch)
    res.save(out)
    say(f"{why}: saved the {done} finished of {batch} samples to {out}")
