"""What a simulation (or a board run) returns: spikes per population, recorded states, weights;
saved to and loaded from one ``.npz`` file."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import SimulationError
from .fileformat import atomic_write

FORMAT, VERSION = "snnkit-result", 1
GROUPS = ("spikes", "v", "i", "theta", "weights", "weight_trace")  # key prefixes in a file


@dataclass
class Result:
    """Output of :func:`snnkit.simulate` and :meth:`snnkit.Device.run`.

    ``spikes[name]`` is a bool tensor ``[steps, batch, neurons]`` for every population (inputs
    included). ``states[name][var]`` (``var`` in v, i, theta) is ``[steps, batch, neurons]``,
    recorded on request after each step. ``weights[proj]`` is the final ``[batch, target,
    source]`` weight tensor of each plastic projection; ``weight_trace[proj]`` the per-step
    record when ``record`` asked for ``"weights"``. Values are in real units for the float
    backend and in integer LSBs for the fixed-point backends (``lsb`` converts them).
    ``metadata`` is free JSON-able information saved with the result (the command line
    writes what ran: network, input, backend).
    """

    backend: str
    steps: int
    batch: int
    spikes: dict[str, torch.Tensor]
    states: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    weight_trace: dict[str, torch.Tensor] = field(default_factory=dict)
    lsb: float | None = None  # real value of one integer unit; None when values are real
    metadata: dict = field(default_factory=dict)

    def _spikes(self, name: str) -> torch.Tensor:
        if name not in self.spikes:
            raise SimulationError(f"no population {name!r} in this result (populations: "
                                  f"{list(self.spikes)})")
        return self.spikes[name]

    def counts(self, name: str) -> torch.Tensor:
        """Spike counts per sample and neuron, ``[batch, neurons]``."""
        return self._spikes(name).sum(0)

    def first_spike(self, name: str) -> torch.Tensor:
        """Step of each neuron's first spike, ``[batch, neurons]``; -1 where it never fired."""
        s = self._spikes(name)
        t = torch.where(s.any(0), s.to(torch.uint8).argmax(0), torch.full(s.shape[1:], -1))
        return t

    def predict(self, name: str) -> torch.Tensor:
        """Most active neuron per sample (ties: lowest index), e.g. a classifier's output."""
        return self.counts(name).argmax(-1)

    def real(self, values: torch.Tensor) -> torch.Tensor:
        """``values`` (a state or weight of this result) in real units: times ``lsb`` for
        the integer backends, unchanged for the float one."""
        return values if self.lsb is None else values.to(torch.float64) * self.lsb

    def to_numpy(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays: ``spikes/<pop>``, ``<var>/<pop>``, ``weights/<proj>`` ..."""
        out = {f"spikes/{k}": v.cpu().numpy().astype(np.uint8) for k, v in self.spikes.items()}
        for pop, d in self.states.items():
            out.update({f"{var}/{pop}": t.cpu().numpy() for var, t in d.items()})
        out.update({f"weights/{k}": v.cpu().numpy() for k, v in self.weights.items()})
        out.update({f"weight_trace/{k}": v.cpu().numpy() for k, v in self.weight_trace.items()})
        return out

    def save(self, path) -> Path:
        """Write the result to exactly ``path`` (an ``.npz`` archive whatever the name; no
        suffix is added), atomically: arrays as :meth:`to_numpy`, plus ``meta``, a JSON
        string with the backend, steps, batch, ``lsb`` and ``metadata``. Returns the path."""
        path = Path(path)
        arrays = self.to_numpy()
        arrays["meta"] = np.array(json.dumps(
            {"format": FORMAT, "version": VERSION, "backend": self.backend,
             "steps": self.steps, "batch": self.batch, "lsb": self.lsb,
             "metadata": self.metadata}))
        atomic_write(path, lambda f: np.savez_compressed(f, **arrays))
        return path

    @classmethod
    def load(cls, path) -> Result:
        """Read a result written by :meth:`save` (also one without ``meta``, as snnkit
        0.1 wrote them: backend "unknown", integer states without their scale).

        Raises
        ------
        SimulationError : the file is missing, not an ``.npz``, or not a snnkit result
        """
        path = Path(path)
        if not path.is_file():
            raise SimulationError(f"{path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            # numpy reads any other file as a pickle and advises loading it unsafely: no
            why = "not a zip archive of arrays" if "pickle" in str(e) else str(e)
            raise SimulationError(f"{path}: not a result file (.npz): {why}") from None
        meta = {}
        if "meta" in arrays:
            try:
                meta = json.loads(str(arrays.pop("meta")))
            except ValueError as e:
                raise SimulationError(f"{path}: meta: not JSON ({e})") from e
            if meta.get("format") != FORMAT:
                raise SimulationError(f"{path}: meta.format is {meta.get('format')!r}, not "
                                      f"{FORMAT!r}")
            if meta.get("version", 0) > VERSION:
                raise SimulationError(f"{path}: result format version {meta['version']} is "
                                      f"newer than this snnkit reads ({VERSION}); upgrade")
        groups: dict[str, dict[str, torch.Tensor]] = {g: {} for g in GROUPS}
        for key, arr in arrays.items():
            group, _, name = key.partition("/")
            if group not in groups or not name:
                raise SimulationError(f"{path}: unexpected array {key!r} (a result holds "
                                      f"{', '.join(g + '/NAME' for g in GROUPS)} and meta)")
            groups[group][name] = torch.from_numpy(arr)
        spikes = {k: v.to(torch.bool) for k, v in groups["spikes"].items()}
        if not spikes:
            raise SimulationError(f"{path}: holds no spikes/<population> arrays")
        first = next(iter(spikes.values()))
        if first.dim() != 3:
            raise SimulationError(f"{path}: spikes are {tuple(first.shape)}, expected "
                                  f"[steps, batch, neurons]")
        states: dict[str, dict[str, torch.Tensor]] = {}
        for var in ("v", "i", "theta"):
            for pop, t in groups[var].items():
                states.setdefault(pop, {})[var] = t
        return cls(meta.get("backend", "unknown"), int(meta.get("steps", first.shape[0])),
                   int(meta.get("batch", first.shape[1])), spikes, states, groups["weights"],
                   groups["weight_trace"], meta.get("lsb"), meta.get("metadata", {}))

    @classmethod
    def concat(cls, parts: list[Result]) -> Result:
        """Results of consecutive groups of samples (same network, steps and backend) as one
        result over all of them, in order."""
        if not parts:
            raise SimulationError("concat: no results")
        a = parts[0]

        def cat(get, dim):
            return {k: torch.cat([get(p)[k] for p in parts], dim) for k in get(a)}

        by_pop = {pop: {var: torch.cat([p.states[pop][var] for p in parts], 1) for var in d}
                  for pop, d in a.states.items()}
        return cls(a.backend, a.steps, sum(p.batch for p in parts),
                   cat(lambda p: p.spikes, 1), by_pop, cat(lambda p: p.weights, 0),
                   cat(lambda p: p.weight_trace, 1), a.lsb, dict(a.metadata))

    def __repr__(self) -> str:
        spk = ", ".join(f"{k}: {int(v.sum())} spikes" for k, v in self.spikes.items())
        return f"Result({self.backend}, steps={self.steps}, batch={self.batch}; {spk})"
