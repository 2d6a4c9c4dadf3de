"""The ``.snn`` network file: a zip archive holding ``manifest.json`` and ``.npy`` arrays.

Format version 1 (docs/network-format.md). The manifest holds every scalar; each array
(weights, masks, per-neuron parameters) is stored losslessly as ``arrays/<key>.npy`` and the
manifest refers to it as ``{"array": "<key>"}``. Saving writes a temporary file in the same
folder and renames it, so a crash never leaves half a file.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import NetworkError
from .network import NEURON_MODELS, STDP, Network, Quantization

FORMAT = "snnkit-network"
VERSION = 1


# --------------------------------------------------------------------------- writing


class _Writer:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def value(self, key: str, v: Any):
        if isinstance(v, np.ndarray):
            self.arrays[key] = v
            return {"array": key}
        return v


def to_manifest(net: Network) -> tuple[dict, dict[str, np.ndarray]]:
    """The manifest dict and the arrays it refers to."""
    w = _Writer()
    pops = []
    for i, p in enumerate(net.populations):
        d: dict[str, Any] = {"name": p.name, "size": p.size}
        if p.is_input:
            d.update(kind="input", encoding=p.encoding)
        else:
            params = {f.name: w.value(f"populations.{i}.{f.name}", getattr(p.neuron, f.name))
                      for f in dataclasses.fields(p.neuron)}
            d.update(kind="neurons", model=p.neuron.model, params=params)
        pops.append(d)
    projs = []
    for i, pr in enumerate(net.projections):
        d = {"source": pr.source, "target": pr.target, "delay": pr.delay,
             "weight": w.value(f"projections.{i}.weight", pr.weight)}
        if pr.mask is not None:
            d["mask"] = w.value(f"projections.{i}.mask", pr.mask)
        if pr.plastic_mask is not None:
            d["plastic_mask"] = w.value(f"projections.{i}.plastic_mask", pr.plastic_mask)
        if pr.stdp is not None:
            d["stdp"] = dataclasses.asdict(pr.stdp)
        projs.append(d)
    manifest = {
        "format": FORMAT, "version": VERSION, "name": net.name, "dt": net.dt,
        "quantization": None if net.quantization is None else dataclasses.asdict(net.quantization),
        "populations": pops, "projections": projs,
    }
    return manifest, w.arrays


def save(net: Network, path) -> None:
    path = Path(path)
    manifest, arrays = to_manifest(net)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", json.dumps(manifest, indent=1))
            for key, arr in arrays.items():
                buf = io.BytesIO()
                np.save(buf, arr, allow_pickle=False)
                z.writestr(f"arrays/{key}.npy", buf.getvalue())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- reading


class _Reader:
    def __init__(self, z: zipfile.ZipFile, where: str):
        self.z, self.where = z, where

    def value(self, v: Any, label: str):
        if isinstance(v, dict) and set(v) == {"array"}:
            name = f"arrays/{v['array']}.npy"
            try:
                raw = self.z.read(name)
            except KeyError:
                raise NetworkError(f"{self.where}: {label}: array {name!r} is missing from "
                                   f"the file")
            except (zipfile.BadZipFile, EOFError, OSError) as e:
                raise NetworkError(f"{self.where}: {label}: array {name!r} is corrupt ({e})")
            try:
                return np.load(io.BytesIO(raw), allow_pickle=False)
            except Exception as e:  # noqa: BLE001 - numpy raises several types
                raise NetworkError(f"{self.where}: {label}: array {name!r} is unreadable ({e})")
        return v


def _get(d: dict, key: str, label: str, types=None):
    if not isinstance(d, dict) or key not in d:
        raise NetworkError(f"{label}: missing field {key!r}")
    v = d[key]
    if types is not None and (not isinstance(v, types) or isinstance(v, bool) and bool not in (
            types if isinstance(types, tuple) else (types,))):
        tn = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise NetworkError(f"{label}.{key}: expected {tn}, got {type(v).__name__}")
    return v


def from_manifest(manifest: dict, reader: _Reader) -> Network:
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt != FORMAT:
        raise NetworkError(f"manifest.format: expected {FORMAT!r}, got {fmt!r}")
    version = _get(manifest, "version", "manifest", int)
    if version > VERSION:
        raise NetworkError(f"manifest.version: file format version {version} is newer than this "
                           f"snnkit supports ({VERSION}); upgrade snnkit")
    if version < 1:
        raise NetworkError(f"manifest.version: invalid version {version}")
    q = manifest.get("quantization")
    quant = None
    if q is not None:
        try:
            quant = Quantization(**q)
        except TypeError as e:
            raise NetworkError(f"quantization: {e}")
    net = Network(dt=_get(manifest, "dt", "manifest", (int, float)), quantization=quant,
                  name=manifest.get("name", ""))
    for i, d in enumerate(_get(manifest, "populations", "manifest", list)):
        label = f"populations[{i}]"
        name, size = _get(d, "name", label, str), _get(d, "size", label, int)
        kind = _get(d, "kind", label, str)
        if kind == "input":
            net.add_input(name, size, d.get("encoding", "spikes"))
        elif kind == "neurons":
            model = _get(d, "model", label, str)
            cls = NEURON_MODELS.get(model)
            if cls is None:
                raise NetworkError(f"{label} ({name}).model: unknown neuron model {model!r} "
                                   f"(known: {', '.join(NEURON_MODELS)})")
            params = _get(d, "params", label, dict)
            known = {f.name for f in dataclasses.fields(cls)}
            extra = set(params) - known
            if extra:
                raise NetworkError(f"{label} ({name}).params: unknown parameter(s) "
                                   f"{sorted(extra)} for model {model!r}")
            kw = {k: reader.value(v, f"{label} ({name}).params.{k}") for k, v in params.items()}
            net.add_population(name, size, cls(**kw))
        else:
            raise NetworkError(f"{label}.kind: must be 'input' or 'neurons', got {kind!r}")
    for i, d in enumerate(_get(manifest, "projections", "manifest", list)):
        label = f"projections[{i}]"
        src, tgt = _get(d, "source", label, str), _get(d, "target", label, str)
        label = f"{label} ({src}->{tgt})"
        stdp = d.get("stdp")
        if stdp is not None:
            try:
                stdp = STDP(**stdp)
            except TypeError as e:
                raise NetworkError(f"{label}.stdp: {e}")
        net.connect(
            src, tgt, reader.value(_get(d, "weight", label), f"{label}.weight"),
            mask=reader.value(d.get("mask"), f"{label}.mask"),
            delay=_get(d, "delay", label, int), stdp=stdp,
            plastic_mask=reader.value(d.get("plastic_mask"), f"{label}.plastic_mask"))
    return net


def load(path) -> Network:
    """Read a network file written by :meth:`Network.save`.

    Raises:
        NetworkError: the file is missing, not a snnkit archive, truncated, of a newer format
            version, or describes an invalid network; the message names the field.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise NetworkError(f"{where}: no such file")
    try:
        with zipfile.ZipFile(path) as z:
            try:
                raw = z.read("manifest.json")
            except KeyError:
                raise NetworkError(f"{where}: not a snnkit network file (no manifest.json)")
            try:
                manifest = json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise NetworkError(f"{where}: manifest.json is not valid JSON ({e})")
            try:
                return from_manifest(manifest, _Reader(z, where))
            except NetworkError as e:
                if str(e).startswith(where):
                    raise
                raise NetworkError(f"{where}: {e}") from None
    except (zipfile.BadZipFile, EOFError) as e:
        raise NetworkError(f"{where}: not a snnkit network file, or truncated ({e})") from None
