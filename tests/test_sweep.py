"""snnkit.sweep on a local Ray (2 workers): a grid of a task, the CSV and the plot; an
interrupted sweep (a configuration failed) resumes and runs only what did not finish."""

import csv
from pathlib import Path

import pytest

import snnkit
from snnkit.sweep import SweepConfig, sweep


@pytest.fixture(scope="module", autouse=True)
def ray_stopped_after():
    yield
    import ray

    ray.shutdown()  # the local Ray the sweeps started: not left running for other tests


def flaky(params: dict) -> dict:
    """A task that logs each call and fails while its ``fail`` file exists for x == 2."""
    log = Path(params["log"])
    with open(log / "calls.txt", "a") as f:
        f.write(f"{params['x']},{params['seed']}\n")
    if params["x"] == 2 and (log / "fail").exists():
        raise RuntimeError("interrupted")
    return {"score": params["x"] * 10 + params["seed"], "half": params["x"] / 2}


def calls(log: Path) -> list[str]:
    return sorted((log / "calls.txt").read_text().split())


def test_tiny_sweep_on_local_ray_writes_a_table_and_resumes(tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    (log / "fail").touch()
    cfg = {"name": "tiny", "task": "tests.test_sweep:flaky", "metric": "score",
           "fixed": {"log": str(log)}, "grid": {"x": [1, 2, 3], "seed": [0, 1]}}
    first = sweep(cfg, workers=2, out=tmp_path / "out")
    assert len(first.rows) == 6 and first.errors == 2
    assert {r["x"] for r in first.rows if r["status"] != "ok"} == {2}
    # the task's own error, not Ray's coloured worker header
    assert {r["status"] for r in first.rows if r["x"] == 2} == {"error: RuntimeError: interrupted"}
    assert calls(log) == ["1,0", "1,1", "2,0", "2,1", "3,0", "3,1"]
    (log / "fail").unlink()
    again = sweep(cfg, workers=2, out=tmp_path / "out")  # the same sweep: resumed
    assert calls(log) == ["1,0", "1,1", "2,0", "2,0", "2,1", "2,1", "3,0", "3,1"]
    assert again.errors == 0 and again.best()["score"] == 31
    with open(again.csv) as f:
        table = list(csv.DictReader(f))
    assert [(r["x"], r["seed"], r["score"], r["half"]) for r in table] == [
        (str(x), str(s), str(float(10 * x + s)), str(x / 2)) for x in (1, 2, 3) for s in (0, 1)]
    assert again.plot.exists() and again.plot.stat().st_size > 1000
    # a metric the task does not return: said (best() was None, and the sweep "succeeded")
    with pytest.raises(snnkit.SnnkitError, match=r"config\.metric: task 'tests.test_sweep:flaky' "
                                                 r"returned \['half', 'score'\], not 'acc'"):
        sweep({**cfg, "name": "nometric", "metric": "acc", "grid": {"x": [1], "seed": [0]}},
              workers=1, out=tmp_path / "out")


def test_sweep_config_errors_name_the_key(tmp_path):
    with pytest.raises(snnkit.SnnkitError, match="unknown keys \\['grids'\\]"):
        SweepConfig.load({"name": "a", "task": "stdp", "grids": {}})
    with pytest.raises(snnkit.SnnkitError, match="config.space.lr: one of"):
        SweepConfig.load({"name": "a", "task": "train", "space": {"lr": {"normal": [0, 1]}}})
    with pytest.raises(snnkit.SnnkitError, match="cannot import 'nowhere:f'"):
        SweepConfig.load({"name": "a", "task": "nowhere:f"})
    # a built-in task's parameters and metrics are checked before Ray starts
    with pytest.raises(snnkit.SnnkitError, match=r"parameters \['stepz'\] are not known to "
                                                 r"task 'convert' \(known: \['backend'"):
        SweepConfig.load({"name": "a", "task": "convert", "grid": {"stepz": [8]}})
    with pytest.raises(snnkit.SnnkitError, match=r"config\.metric: task 'stdp' returns "
                                                 r"\['accuracy', 'accuracy_mean_vote'\], "
                                                 r"not 'acc'"):
        SweepConfig.load({"name": "a", "task": "stdp", "metric": "acc"})
    f = tmp_path / "s.toml"
    f.write_text('task = "convert"\n[grid]\nsteps = [8, 16]\nseed = [0, 1]\n')
    cfg = SweepConfig.load(f)
    assert (cfg.name, cfg.size, cfg.varied) == ("s", 4, ["steps", "seed"])


def test_builtin_tasks_score_and_name_unknown_parameters():
    from snnkit.sweep_tasks import convert, stdp

    m = convert({"n_test": 30, "steps": 8, "seed": 0})
    assert 0.5 < m["accuracy"] <= 1.0 and m["spikes"] > 0 and 0.5 < m["ann_accuracy"] <= 1.0
    with pytest.raises(snnkit.SnnkitError, match="\\['a_pluss'\\] are not known"):
        stdp({"a_pluss": 0.1})
