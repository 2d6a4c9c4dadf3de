"""The ``.snn`` container: a zip archive holding ``manifest.json`` and ``.npy`` arrays.

Format version 2 (docs/network-format.md; version 1 files, without population shapes and
convolution projections, still load). The manifest holds every scalar; each array
(weights, masks, per-neuron parameters) is stored losslessly as ``arrays/<key>.npy`` and the
manifest refers to it as ``{"array": "<key>"}``. Saving writes a temporary file in the same
folder and renames it, so a crash never leaves half a file.

This module knows the container, not the network: :meth:`snnkit.Network.to_manifest` and
:meth:`~snnkit.Network.from_manifest` convert between a network and its manifest, and
:meth:`snnkit.Network.save` / :func:`snnkit.load` put the two together.
"""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .errors import NetworkError

FORMAT = "snnkit-network"
VERSION = 2  # 2: population shapes, convolution projections
# what zipfile, zlib and json raise on a damaged archive (a flipped byte, a cut, a splice):
# the file, not snnkit, is wrong
DAMAGED = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError,
           NotImplementedError, RuntimeError, UnicodeDecodeError, struct.error, ValueError,
           OverflowError, RecursionError, MemoryError)
# what building a network from a well-formed but wrong manifest may raise besides
# NetworkError (values of the wrong kind reaching numpy or a constructor)
MALFORMED = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
             ZeroDivisionError, RecursionError, MemoryError)

T = TypeVar("T")


# --------------------------------------------------------------------------- writing


def write(path, manifest: dict, arrays: dict[str, np.ndarray]) -> None:
    """Write ``manifest`` and the ``arrays`` it refers to into the archive ``path``, atomically
    (a temporary file in the same folder, renamed when complete)."""

    def fill(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", json.dumps(manifest, indent=1))
            for key, arr in arrays.items():
                buf = io.BytesIO()
                np.save(buf, arr, allow_pickle=False)
                z.writestr(f"arrays/{key}.npy", buf.getvalue())

    atomic_write(path, fill)


def atomic_write(path, fill: Callable[[Any], None]) -> None:
    """Call ``fill(binary file)`` on a temporary file beside ``path`` and rename it to exactly
    ``path`` when complete (see :func:`atomic_path`)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            fill(f)

    atomic_path(path, write)


def atomic_path(path, write: Callable[[str], None], suffix: str = ".tmp") -> None:
    """Call ``write(temporary path)`` (a file beside ``path``, name ending in ``suffix``) and
    rename it to exactly ``path`` when complete: an interrupted write leaves any old file
    intact and no temporary one. The file gets the permissions of an ordinary new file (0666
    less the umask), not the 0600 of a temporary file.

    Raises
    ------
    IsADirectoryError : ``path`` is a folder
    FileNotFoundError : its folder does not exist (or is a file)
    """
    path = Path(path)
    folder = path.parent or Path(".")
    # named as the caller gave them, not as the temporary file beside them
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; name a file", str(path))
    if not folder.is_dir():
        raise FileNotFoundError(errno.ENOENT, "no such folder" if not folder.exists() else
                                "not a folder", str(folder))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


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
            except DAMAGED as e:
                raise NetworkError(f"{self.where}: {label}: array {name!r} is corrupt "
                                   f"({type(e).__name__}: {e})")
            try:
                return np.load(io.BytesIO(raw), allow_pickle=False)
            except Exception as e:  # noqa: BLE001 - numpy raises several types
                raise NetworkError(f"{self.where}: {label}: array {name!r} is unreadable ({e})")
        return v


def field(d: dict, key: str, label: str, types=None):
    """``d[key]``, checked to be of ``types``; a NetworkError naming ``label.key`` otherwise."""
    if not isinstance(d, dict) or key not in d:
        raise NetworkError(f"{label}: missing field {key!r}")
    v = d[key]
    if types is not None and (not isinstance(v, types) or isinstance(v, bool) and bool not in (
            types if isinstance(types, tuple) else (types,))):
        tn = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise NetworkError(f"{label}.{key}: expected {tn}, got {type(v).__name__}")
    return v


def _check_version(manifest) -> None:
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt != FORMAT:
        raise NetworkError(f"manifest.format: expected {FORMAT!r}, got {fmt!r}")
    version = field(manifest, "version", "manifest", int)
    if version > VERSION:
        raise NetworkError(f"manifest.version: file format version {version} is newer than this "
                           f"snnkit supports ({VERSION}); upgrade snnkit")
    if version < 1:
        raise NetworkError(f"manifest.version: invalid version {version}")


def read(path, build: Callable[[dict, Callable[[Any, str], Any]], T]) -> T:
    """Open the archive ``path``, check its format and version, and return
    ``build(manifest, value)``, where ``value(v, label)`` reads the array ``v`` refers to.

    Raises
    ------
    NetworkError : the file is missing, not a snnkit archive, damaged (truncated, bytes
        changed: the archive's CRC-32 of each member catches these), of a newer format
        version, or describes a malformed network; every message starts with the file's path
        and names the field where it is known
    """
    path = Path(path)
    where = str(path)
    if path.is_dir():
        raise NetworkError(f"{where}: a folder, not a network file")
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
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
                raise NetworkError(f"{where}: manifest.json is not valid JSON ({e})")
            try:
                _check_version(manifest)
                return build(manifest, _Reader(z, where).value)
            except NetworkError as e:
                if str(e).startswith(where):
                    raise
                raise NetworkError(f"{where}: {e}") from None
            except MALFORMED as e:
                raise NetworkError(f"{where}: the network it describes is malformed "
                                   f"({type(e).__name__}: {e})") from None
    except NetworkError:
        raise
    except DAMAGED as e:
        raise NetworkError(f"{where}: not a snnkit network file, or truncated or damaged "
                           f"({type(e).__name__}: {e})") from None
