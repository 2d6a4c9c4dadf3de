"""Checking what a simulation is fed, written once for every backend (float, fixed, RTL and
a board), so a bad input gets the same message whichever path runs it."""

from __future__ import annotations

import numpy as np
import torch

from .errors import SimulationError, count
from .network import Network


def check_inputs(net: Network, inputs,
                 steps: int | None) -> tuple[dict[str, torch.Tensor], int, int]:
    """Validate inputs; return ``({input_pop: [steps, batch, n] tensor}, steps, batch)``.

    ``inputs`` is one array ``[steps, batch, n_inputs]`` (input populations concatenated in
    network order) or a dict ``{input population: [steps, batch, size]}`` (an input population
    shaped ``[C, H, W]`` also takes ``[steps, batch, C, H, W]``); spikes as bool or
    0/1 numbers, currents as finite numbers. ``steps`` (default: the inputs' length) may be
    shorter than the inputs: the first ``steps`` steps are run.

    Raises
    ------
    SimulationError : names the input, the dimension or the value that is wrong
    """
    pops = net.inputs
    if not pops:
        raise SimulationError("network: has no input population (add one with net.add_input)")
    if isinstance(inputs, dict):
        unknown = set(inputs) - {p.name for p in pops}
        if unknown:
            raise SimulationError(f"inputs: {sorted(unknown)} are not input populations "
                                  f"(inputs: {[p.name for p in pops]})")
        missing = [p.name for p in pops if p.name not in inputs]
        if missing:
            raise SimulationError(f"inputs: no data for input population(s) {missing}")
        arrays = {p.name: _flat(_as_tensor(inputs[p.name], f"inputs[{p.name!r}]"), p)
                  for p in pops}
    else:
        whole = _as_tensor(inputs, "inputs")
        if len(pops) == 1:
            whole = _flat(whole, pops[0])
        _check_ndim(whole, "inputs", net.n_inputs, pops[0].shape if len(pops) == 1 else None)
        if whole.shape[2] != net.n_inputs:
            raise SimulationError(f"inputs: last dimension is {whole.shape[2]} but the network "
                                  f"has {net.n_inputs} inputs ({_input_sizes(net)})")
        arrays, off = {}, 0
        for p in pops:
            arrays[p.name] = whole[:, :, off:off + p.size]
            off += p.size
    first = next(iter(arrays.values()))
    n_steps, batch = first.shape[0], first.shape[1] if first.dim() == 3 else 0
    for p in pops:
        x, label = arrays[p.name], f"inputs[{p.name!r}]"
        _check_ndim(x, label, p.size, p.shape)
        if x.shape[2] != p.size:
            raise SimulationError(f"{label}: last dimension is {x.shape[2]}, population "
                                  f"{p.name!r} has {p.size} inputs")
        if x.shape[:2] != (n_steps, batch):
            raise SimulationError(f"{label}: shape {tuple(x.shape)} disagrees with "
                                  f"[steps={n_steps}, batch={batch}] of the other inputs")
        if p.encoding == "spikes":
            arrays[p.name] = _as_spikes(x, label)
        else:
            if not torch.is_floating_point(x) and x.dtype not in (torch.int32, torch.int64,
                                                                   torch.int16, torch.uint8):
                raise SimulationError(f"{label}: current inputs must be numbers, got {x.dtype}")
            x = x.to(torch.float64)
            if not torch.isfinite(x).all():
                raise SimulationError(f"{label}: contains NaN or inf")
            arrays[p.name] = x
    if steps is None:
        steps = n_steps
    steps = count("steps", steps)
    if n_steps < steps:
        raise SimulationError(f"steps: inputs cover {n_steps} steps but steps={steps}; "
                              f"give inputs shaped [steps, batch, inputs]")
    if n_steps > steps:  # a shorter run: the first steps of the inputs
        arrays = {k: v[:steps] for k, v in arrays.items()}
    if batch < 1:
        raise SimulationError("inputs: batch dimension is empty")
    return arrays, int(steps), int(batch)


def _input_sizes(net):
    return " + ".join(f"{p.name}[{p.size}]" for p in net.inputs)


def _as_tensor(x, label) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        arr = np.asarray(x)
    except Exception as e:  # noqa: BLE001
        raise SimulationError(f"{label}: cannot be read as an array ({e})")
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise SimulationError(f"{label}: expected a numeric array, got dtype {arr.dtype}")
    return torch.from_numpy(np.ascontiguousarray(arr))


def _flat(x: torch.Tensor, pop) -> torch.Tensor:
    """``[steps, batch, C, H, W]`` of an input population shaped ``[C, H, W]``, flattened
    channel-major as the network indexes it; anything else unchanged."""
    if pop.shape and x.dim() == 2 + len(pop.shape) and tuple(x.shape[2:]) == tuple(pop.shape):
        return x.reshape(x.shape[0], x.shape[1], -1)
    return x


def _check_ndim(x, label, n, image=None):
    """x is [steps, batch, n]; the error names the [C, H, W] form too where the population
    has one (:func:`_flat` takes that form; one that reached here did not match it)."""
    if x.dim() != 3:
        hint = ("; samples [batch, inputs] become spike trains with an encoder, e.g. "
                "snnkit.encoders.regular(x, steps) (values in [0, 1])") if x.dim() == 2 else ""
        alt = f" or [steps, batch, {', '.join(str(d) for d in image)}]" if image else ""
        raise SimulationError(f"{label}: expected shape [steps, batch, {n}]{alt}, got "
                              f"{tuple(x.shape)} ({x.dim()} dimensions){hint}")


def _as_spikes(x: torch.Tensor, label: str) -> torch.Tensor:
    if x.dtype == torch.bool:
        return x
    if x.is_complex():
        raise SimulationError(f"{label}: spikes must be 0/1, got complex dtype")
    bad = (x != 0) & (x != 1)
    if bad.any():
        idx = tuple(int(i) for i in bad.nonzero()[0])
        raise SimulationError(f"{label}: spike inputs must be 0 or 1, found {x[idx].item()!r} "
                              f"at [step, batch, input] = {list(idx)} (use an encoder from "
                              f"snnkit.encoders for rates or currents)")
    return x != 0
