"""Ctrl-C (SIGINT) and SIGTERM on real ``snnkit`` processes: ``simulate`` on the RTL, an RTL
build, ``run`` on the emulated board and ``demo`` stop with a message, leave no process and
no temporary folder behind, and save the samples they finished when an output was named.

The signal goes to the snnkit process alone (not its process group, as a terminal's Ctrl-C
would), so the children it started are its own to stop."""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import snnkit
from snnkit.emulated_board import running
from snnkit.result import Result

from .test_device_emulator import CONFIG
from .test_device_emulator import make_net as board_net

ROOT = Path(__file__).resolve().parents[1]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Cli:
    """``python -m snnkit ARGS`` in ``tmp`` with its own TMPDIR, output in files."""

    def __init__(self, tmp: Path, *args, **env):
        self.tmp, self.tmpdir = tmp, tmp / "tmpdir"
        self.tmpdir.mkdir()
        self.out, self.err = tmp / "stdout", tmp / "stderr"
        # torch's compile cache (an optimizer step makes it in TMPDIR) is torch's, not one of
        # the temporary folders snnkit must remove: it goes beside TMPDIR
        environ = dict(os.environ, TMPDIR=str(self.tmpdir), MPLBACKEND="Agg",
                       TORCHINDUCTOR_CACHE_DIR=str(tmp / "torchinductor"),
                       PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
                       **env)
        with open(self.out, "w") as o, open(self.err, "w") as e:
            # as a terminal's foreground command: Ctrl-C not ignored (a runner that ignores
            # SIGINT, as a background job does, passes that on, and Python then never raises)
            self.proc = subprocess.Popen([sys.executable, "-m", "snnkit", *map(str, args)],
                                         cwd=tmp, env=environ, stdout=o, stderr=e,
                                         preexec_fn=_default_sigint)

    def text(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def wait_for(self, pattern: str, timeout: float, until=lambda: True) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m and until():
                return m
            if self.proc.poll() is not None:
                pytest.fail(f"snnkit ended (status {self.proc.returncode}) before "
                            f"{pattern!r}:\n{self.text()[-3000:]}")
            time.sleep(0.2)
        self.proc.kill()
        pytest.fail(f"no {pattern!r} within {timeout} s:\n{self.text()[-3000:]}")

    def stop(self, sig) -> tuple[int, dict[int, str]]:
        """Send ``sig``; return the exit status and the processes it had started (their
        command lines)."""
        children = {pid: cmdline(pid) for pid in descendants(self.proc.pid)}
        self.proc.send_signal(sig)
        try:
            status = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            pytest.fail(f"snnkit did not stop on {sig!r}:\n{self.text()[-3000:]}")
        return status, children

    def assert_clean(self, status: int, children: dict[int, str], expect: int) -> None:
        text = self.text()
        assert status == expect, text[-3000:]
        assert "Traceback" not in text
        sig = "SIGTERM" if expect == 143 else "Ctrl-C"
        assert f"stopped by {sig}" in self.err.read_text()
        time.sleep(0.5)
        left = [pid for pid in children if alive(pid)]
        assert not left, f"processes left behind: {[children[p] for p in left]}"
        assert not list(self.tmpdir.iterdir()), "temporary files left behind"


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])  # state, parent


def descendants(pid: int) -> set[int]:
    parents = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and (st := _stat(int(d.name))) is not None:
            parents[int(d.name)] = st[1]
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        out.update(kids)
        todo += kids
    return out


def alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return "?"


def inputs(tmp: Path, batch: int, steps: int = 40) -> np.ndarray:
    x = np.random.default_rng(7).random((steps, batch, 12)) < 0.3
    np.save(tmp / "x.npy", x)
    return x


def assert_partial(path: Path, m: re.Match, net, x) -> None:
    """The saved result holds exactly the finished samples, as the fixed-point simulator
    computes them."""
    done = int(m.group(1))
    res = Result.load(path)
    assert res.batch == done >= 1 and res.metadata["interrupted"] is True
    ref = snnkit.simulate(net, x[:, :done], backend="fixed")
    for k, s in ref.spikes.items():
        assert torch.equal(res.spikes[k], s), k


SAVED = r"saved the (\d+) finished of \d+ samples"
ONE_DONE = r"\b[1-9]\d*/\d+ \["  # a tqdm bar past its first sample


@pytest.mark.timeout(300)
def test_sigterm_on_simulate_icarus_kills_vvp_and_keeps_finished_samples(tmp_path):
    net = board_net(seed=5)
    net.save(tmp_path / "net.snn")
    x = inputs(tmp_path, batch=60)
    cli = Cli(tmp_path, "simulate", "net.snn", "--input", "x.npy", "--backend", "icarus",
              "--out", "out.npz")
    cli.wait_for(ONE_DONE, 240, until=lambda: any("vvp" in cmdline(p)
                                                  for p in descendants(cli.proc.pid)))
    status, children = cli.stop(signal.SIGTERM)
    cli.assert_clean(status, children, 143)
    assert_partial(tmp_path / "out.npz", re.search(SAVED, cli.text()), net, x)


@pytest.mark.timeout(300)
def test_sigterm_during_an_rtl_build_leaves_no_compiler_and_no_half_build(tmp_path):
    net = board_net(seed=5)
    net.save(tmp_path / "net.snn")
    inputs(tmp_path, batch=1)
    cache = tmp_path / "cache"
    cli = Cli(tmp_path, "simulate", "net.snn", "--input", "x.npy", "--backend", "verilator",
              "--out", "out.npz", SNNKIT_CACHE=str(cache))
    cli.wait_for(r"building the verilator model", 120,
                 until=lambda: len(descendants(cli.proc.pid)) >= 3)  # verilator, make, ...
    status, children = cli.stop(signal.SIGTERM)
    cli.assert_clean(status, children, 143)
    assert "before the first sample finished" in cli.text()
    assert not (tmp_path / "out.npz").exists()
    assert not list((cache / "rtl").iterdir()), "a half-built model stayed in the cache"


@pytest.mark.timeout(300)
def test_ctrl_c_on_run_keeps_the_samples_the_board_finished(tmp_path):
    net = board_net(seed=5)
    net.save(tmp_path / "net.snn")
    x = inputs(tmp_path, batch=2000)  # long enough (seconds) that Ctrl-C lands mid-run
    with running(CONFIG) as (url, _):
        cli = Cli(tmp_path, "run", "net.snn", "--port", url.replace("socket://", ""),
                  "--input", "x.npy", "--out", "out.npz")
        cli.wait_for(ONE_DONE, 120)
        status, children = cli.stop(signal.SIGINT)
    cli.assert_clean(status, children, 130)
    assert_partial(tmp_path / "out.npz", re.search(SAVED, cli.text()), net, x)


@pytest.mark.timeout(400)
def test_sigterm_on_the_demo_stops_its_emulated_board(tmp_path):
    cli = Cli(tmp_path, "demo", "--quick", "--out", "demo")
    cli.wait_for(r"board at socket://", 360)
    status, children = cli.stop(signal.SIGTERM)
    assert any("Vhost_top" in c for c in children.values()), children  # the board ran
    cli.assert_clean(status, children, 143)
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["interrupted"] is True and "conversion" not in summary


def slow_task(params: dict) -> dict:
    """A sweep task: x = 1 ends at once, x = 2 runs until it is stopped (each marks its
    start in ``log``)."""
    Path(params["log"], f"started{params['x']}").touch()
    if params["x"] == 2:
        time.sleep(600)
    return {"score": float(params["x"])}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig, expect", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_sweep_saves_the_configurations_that_finished(tmp_path, sig, expect):
    log = tmp_path / "log"
    log.mkdir()
    (tmp_path / "s.json").write_text(json.dumps({
        "name": "s", "task": "tests.test_cli_interrupt:slow_task", "metric": "score",
        "fixed": {"log": str(log)}, "grid": {"x": [1, 2]}}))
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # its socket paths: <= 107 bytes
    try:
        cli = Cli(tmp_path, "sweep", "s.json", "--workers", "1", "--out", "out",
                  RAY_TMPDIR=ray_tmp)
        cli.wait_for("", 240, until=lambda: (log / "started2").exists())
        status, _ = cli.stop(sig)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
    text = cli.text()
    assert status == expect, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    assert "sweep interrupted: 1 of 2 configurations done" in text
    assert f"stopped by {'SIGTERM' if expect == 143 else 'Ctrl-C'}" in text
    with open(tmp_path / "out" / "s" / "results.csv") as f:
        assert [(r["x"], r["score"], r["status"]) for r in csv.DictReader(f)] == [
            ("1", "1.0", "ok")]
