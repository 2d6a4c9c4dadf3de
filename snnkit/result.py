"""What a simulation (or a board run) returns: spikes per population, recorded states, weights."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


@dataclass
class Result:
    """Output of :func:`snnkit.simulate` and :meth:`snnkit.Device.run`.

    ``spikes[name]`` is a bool tensor ``[steps, batch, neurons]`` for every population (inputs
    included). ``states[name][var]`` (``var`` in v, i, theta) is ``[steps, batch, neurons]``,
    recorded on request after each step. ``weights[proj]`` is the final ``[batch, target,
    source]`` weight tensor of each plastic projection; ``weight_trace[proj]`` the per-step
    record when ``record`` asked for ``"weights"``. Values are in real units for the float
    backend and in integer LSBs for the fixed-point backends (``lsb`` converts them).
    """

    backend: str
    steps: int
    batch: int
    spikes: dict[str, torch.Tensor]
    states: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    weight_trace: dict[str, torch.Tensor] = field(default_factory=dict)
    lsb: float | None = None  # real value of one integer unit; None when values are real

    def counts(self, name: str) -> torch.Tensor:
        """Spike counts per sample and neuron, ``[batch, neurons]``."""
        return self.spikes[name].sum(0)

    def first_spike(self, name: str) -> torch.Tensor:
        """Step of each neuron's first spike, ``[batch, neurons]``; -1 where it never fired."""
        s = self.spikes[name]
        t = torch.where(s.any(0), s.to(torch.uint8).argmax(0), torch.full(s.shape[1:], -1))
        return t

    def predict(self, name: str) -> torch.Tensor:
        """Most active neuron per sample (ties: lowest index), e.g. a classifier's output."""
        return self.counts(name).argmax(-1)

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays: ``spikes/<pop>``, ``<var>/<pop>``, ``weights/<proj>`` ..."""
        out = {f"spikes/{k}": v.cpu().numpy().astype(np.uint8) for k, v in self.spikes.items()}
        for pop, d in self.states.items():
            out.update({f"{var}/{pop}": t.cpu().numpy() for var, t in d.items()})
        out.update({f"weights/{k}": v.cpu().numpy() for k, v in self.weights.items()})
        out.update({f"weight_trace/{k}": v.cpu().numpy() for k, v in self.weight_trace.items()})
        return out

    def save(self, path) -> None:
        """Write :meth:`to_numpy` to an ``.npz`` file (keys as above)."""
        np.savez_compressed(Path(path), **self.to_numpy())

    def __repr__(self) -> str:
        spk = ", ".join(f"{k}: {int(v.sum())} spikes" for k, v in self.spikes.items())
        return f"Result({self.backend}, steps={self.steps}, batch={self.batch}; {spk})"
