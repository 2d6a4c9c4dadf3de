"""The README's and the user guide's Python examples run as written."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(ROOT / "README.md")
    assert blocks
    exec(compile(blocks[0], "README.md", "exec"), {})
    assert (tmp_path / "net.snn").exists() and (tmp_path / "raster.png").exists()


@pytest.mark.timeout(600)
def test_user_guide_examples_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for i, block in enumerate(python_blocks(ROOT / "docs" / "user-guide.md")):
        exec(compile(block, f"user-guide.md block {i}", "exec"), scope)
    assert (tmp_path / "example.snn").exists()
    assert (tmp_path / "build" / "example" / "report.txt").exists()
    assert scope["res"].spikes["exc"].shape == (100, 8, 20)
    assert scope["w"]  # weights read back from the (emulated) board
