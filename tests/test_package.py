"""A real package: the sdist and the wheel carry the hardware sources (hdl/, the RTL backends'
top and the emulated board's harness from sim/, firmware/), and a pip-installed snnkit runs
the Verilator backend and ``snnkit emulate`` / ``deploy`` / ``run`` from an empty folder.

The wheel is built from the sdist (so the sdist is complete), installed with ``--no-deps``
into a fresh virtualenv that sees this environment's packages through a ``.pth`` file (no
downloads), and every command runs with that virtualenv's Python, outside the checkout."""

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import torch

import snnkit

from .conftest import make_net

CHECKOUT = Path(__file__).resolve().parents[1]
HARDWARE = ("hdl", "firmware")  # carried whole; from sim/ the two files below
SIM_FILES = ("sim/tb_snn.v", "sim/tb_multi.v", "sim/emulator/main.cpp")


def _run(cmd, cwd, env, timeout=300) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"{cmd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _hardware_files() -> list[str]:
    files = [str(f.relative_to(CHECKOUT)) for d in HARDWARE for f in (CHECKOUT / d).rglob("*")
             if f.is_file() and "__pycache__" not in f.parts]
    return sorted(files + list(SIM_FILES))


def _build(tmp: Path, env) -> tuple[Path, Path]:
    """The sdist of a copy of the checkout, and the wheel built from the unpacked sdist."""
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(CHECKOUT / name, src / name)
    for d in ("snnkit", "hdl", "sim", "firmware"):
        shutil.copytree(CHECKOUT / d, src / d, ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp / "dist"
    _run([sys.executable, "-c", f"from setuptools import build_meta as b; "
                                f"b.build_sdist({str(dist)!r})"], src, env)
    (sdist,) = dist.glob("snnkit-*.tar.gz")
    with tarfile.open(sdist) as t:
        t.extractall(tmp / "unpacked", filter="data")
    (root,) = (tmp / "unpacked").iterdir()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", dist, root], tmp, env)
    (wheel,) = dist.glob("snnkit-*.whl")
    return sdist, wheel


def test_pip_installed_snnkit_runs_the_hardware_from_an_empty_folder(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    sdist, wheel = _build(tmp_path, env)
    with tarfile.open(sdist) as t:
        in_sdist = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    with zipfile.ZipFile(wheel) as z:
        in_wheel = set(z.namelist())
    want = _hardware_files()
    assert set(want) <= in_sdist, sorted(set(want) - in_sdist)
    assert {f"snnkit/{f}" for f in want} <= in_wheel, sorted({f"snnkit/{f}" for f in want}
                                                             - in_wheel)
    modules = {str(f.relative_to(CHECKOUT)) for f in (CHECKOUT / "snnkit").rglob("*")
               if f.suffix in (".py", ".c")}  # every subpackage and C kernel source
    assert modules <= in_wheel, sorted(modules - in_wheel)

    # a fresh virtualenv, this environment's packages visible, snnkit from the wheel only
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    py = venv / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, env).strip())
    (site / "main_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index",
          wheel], tmp_path, env)
    work = tmp_path / "empty"
    work.mkdir()

    # the shared fixture network: `emulate --net` sizes the board as test_device_emulator's
    net = make_net(seed=2, stdp=True, per_neuron=False)
    net.save(work / "net.snn")
    x = np.random.default_rng(2).random((20, 1, 12)) < 0.3
    np.savez(work / "in.npz", inputs=x.astype(np.uint8))
    ref = snnkit.simulate(net, x, backend="fixed")

    # the Verilator backend, built from the installed sources into an empty cache
    script = textwrap.dedent("""
        import numpy as np, snnkit
        from snnkit import hardware_files
        assert hardware_files.ROOT == hardware_files.PACKAGE, hardware_files.ROOT
        net = snnkit.load("net.snn")
        x = np.load("in.npz")["inputs"].astype(bool)
        res = snnkit.simulate(net, x, backend="verilator", cache_dir="cache")
        np.savez("rtl.npz", **{k: v.numpy() for k, v in res.spikes.items()})
        from snnkit import kernels  # the CPU kernel, compiled from the installed C sources
        assert kernels.load() is not None, "CPU kernel not built"
        cpu = snnkit.simulate(net, x, backend="fixed")
        assert all(np.array_equal(cpu.spikes[k], v) for k, v in res.spikes.items())
        print(snnkit.__file__)
    """)
    out = _run([py, "-c", script], work, env)
    assert out.strip().startswith(str(venv)), out  # the installed package, not the checkout
    with np.load(work / "rtl.npz") as f:
        for name, s in ref.spikes.items():
            assert np.array_equal(f[name], s.numpy()), name

    # `snnkit emulate`, `deploy` and `run` of the installed package, from the empty folder
    snnkit_bin = venv / "bin" / "snnkit"
    proc = subprocess.Popen([snnkit_bin, "emulate", "--port", "0", "--net", "net.snn"],
                            cwd=work, env=env, stdout=subprocess.PIPE, text=True)
    try:
        url = next((ln.split()[3] for ln in proc.stdout if ln.startswith("emulated board on ")),
                   None)
        assert url, "snnkit emulate did not start"
        assert "loaded and verified" in _run([snnkit_bin, "deploy", "net.snn", "--port", url],
                                             work, env)
        _run([snnkit_bin, "run", "net.snn", "--port", url, "--input", "in.npz", "--out",
              "out.npz"], work, env)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    with np.load(work / "out.npz") as f:
        for name, s in ref.spikes.items():
            assert torch.equal(torch.from_numpy(f[f"spikes/{name}"].astype(bool)), s), name
    assert sorted(p.name for p in work.iterdir()) == ["cache", "in.npz", "net.snn", "out.npz",
                                                       "rtl.npz"]
