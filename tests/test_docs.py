"""The docs cannot drift: every code block of README.md and docs/*.md runs here.

Blocks of one file run in order in one folder, Python blocks in one namespace. A ``sh`` block
runs line by line: ``snnkit ARGS`` through the same entry point in this process (the
installed ``snnkit`` script calls it too), anything else under bash. An HTML comment right
before a block changes how it runs, and says why in the file itself:

* ``<!-- doc-test: parse-only (why) -->``: each command is checked, not run: ``snnkit ARGS``
  must parse, ``bash FILE`` must exist and pass ``bash -n``, ``python -m MODULE`` must import;
* ``<!-- doc-test: background until "TEXT" (why) -->``: a server started in the background
  (a second terminal, for a reader) until it prints TEXT, stopped after the file's last block;
* ``<!-- doc-test: shortened: replace 'A' 'B' (why) -->``: run with A replaced by B.

The port 5555 of the examples becomes a free port. ``text`` blocks (and untagged ones in the
files of other areas) are output, layouts and diagrams: they must not hold commands or code.
``json`` and ``toml`` blocks must parse; a network manifest must be exactly what
``Network.save`` writes.
"""

import importlib.util
import json
import re
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import snnkit
from snnkit.cli import build_parser, main

from .conftest import make_net

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:<!-- doc-test: (?P<marker>.*?) -->\n)?^```(?P<lang>[\w-]*)\n"
                   r"(?P<body>.*?)^```", re.S | re.M)
CODE_LINE = re.compile(r"^\s*(snnkit |\.venv/|python|import |from \S+ import|\$ |>>> |bash |pip )")
OTHER_AREAS = {"hardware.md", "fixed-point.md"}  # not this area's text: untagged fences allowed

# Files whose code assumes names the text introduces, and how this test runs them shortened
SETUP = {  # file -> (namespace builder, [(old, new)], why)
    "hardware.md": (lambda: {"snnkit": snnkit,
                             "net": snnkit.quantize(make_net(per_neuron=False))[0],
                             "inputs": np.random.default_rng(0).random((12, 1, 12)) < 0.3},
                    [('backend="verilator"', 'backend="icarus"')],
                    "the same RTL bench under Icarus: a Verilator build takes minutes"),
}


def blocks(path: Path) -> list[dict]:
    return [m.groupdict() | {"line": path.read_text()[:m.start("body")].count("\n")}
            for m in FENCE.finditer(path.read_text())]


def runnable(path: Path) -> bool:
    return any(b["lang"] in ("python", "sh") for b in blocks(path))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_block_is_run_or_is_plain_text():
    for path in DOCS:
        for b in blocks(path):
            where = f"{path.name}:{b['line']}"
            assert b["lang"] in ("python", "sh", "json", "toml", "text") or (
                b["lang"] == "" and path.name in OTHER_AREAS), f"{where}: tag the block"
            if b["lang"] in ("text", ""):
                code = [ln for ln in b["body"].splitlines() if CODE_LINE.match(ln)]
                assert not code, f"{where}: commands or code in a plain block: {code}"
            if b["marker"]:
                assert re.match(r"(parse-only|background until \"|shortened: replace ')",
                                b["marker"]), f"{where}: unknown marker {b['marker']!r}"


@pytest.mark.timeout(900)
@pytest.mark.parametrize("path", [p for p in DOCS if runnable(p)], ids=lambda p: p.name)
def test_doc_code_runs(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_scope, replacements, _why = SETUP.get(path.name, (dict, [], ""))
    scope, port, servers, used = make_scope(), free_port(), [], set()
    try:
        for k, b in enumerate(blocks(path)):
            code, marker = b["body"], b["marker"] or ""
            for old, new in re.findall(r"replace '(.*?)' '(.*?)'", marker):
                assert old in code, f"{path.name}:{b['line']}: {old!r} not in the block"
                code = code.replace(old, new)
            if b["lang"] == "python":
                for old, new in replacements:
                    used.update([old] if old in code else [])
                    code = code.replace(old, new)
            where = f"{path.name}:{b['line']} (block {k})"
            if b["lang"] == "python":
                exec(compile(code, where, "exec"), scope)
            elif b["lang"] == "sh":
                code = code.replace("5555", str(port))
                if marker.startswith("background"):
                    servers.append(background(code, re.match(r'background until "(.*?)"',
                                                              marker).group(1), where))
                else:
                    run_sh(code, where, parse_only=marker.startswith("parse-only"))
            elif b["lang"] == "toml":
                tomllib.loads(code)
            elif b["lang"] == "json":
                check_json(json.loads(code), where)
    finally:
        for proc in servers:
            proc.send_signal(2)
            proc.wait(timeout=30)
    assert used == {old for old, _ in replacements}, "a shortening no longer applies"
    CHECKS.get(path.name, lambda scope, d: None)(scope, tmp_path)


def run_sh(code: str, where: str, parse_only: bool) -> None:
    for line in code.replace("\\\n", " ").splitlines():
        for cmd in line.split(" && "):
            argv = shlex.split(cmd, comments=True)
            if not argv:
                continue
            if argv[0].endswith("snnkit"):
                if parse_only:
                    try:
                        build_parser()[0].parse_args(argv[1:])
                    except SystemExit:
                        pytest.fail(f"{where}: {cmd!r} does not parse")
                else:
                    assert main(argv[1:]) == 0, f"{where}: {cmd!r} failed"
            elif parse_only and argv[0] == "bash":
                script = ROOT / argv[1]
                assert script.exists() and subprocess.run(["bash", "-n", script]).returncode == 0
            elif parse_only and "-m" in argv:
                module = argv[argv.index("-m") + 1]
                assert importlib.util.find_spec(module) is not None, f"{where}: {module}"
            elif parse_only:
                pytest.fail(f"{where}: cannot check {cmd!r} without running it")
            else:
                subprocess.run(cmd, shell=True, check=True, executable="/bin/bash")


def background(code: str, ready: str, where: str) -> subprocess.Popen:
    argv = shlex.split(code, comments=True)
    assert argv[0] == "snnkit", f"{where}: a background block holds one snnkit command"
    proc = subprocess.Popen([sys.executable, "-m", "snnkit", *argv[1:]], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen, deadline = "", time.monotonic() + 600
    while ready not in seen:
        line = proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"{where}: no {ready!r}:\n{seen}")
        seen += line
    return proc


def check_json(doc, where: str) -> None:
    """A network manifest in the docs is exactly what ``to_manifest`` writes for it."""
    if doc.get("format") != "snnkit-network":
        return
    pops = doc["populations"]
    size = {p["name"]: p["size"] for p in pops}

    def value(v, label):
        if not (isinstance(v, dict) and "array" in v):
            return v
        kind, i, name = v["array"].split(".")
        if kind == "populations":
            return np.full(pops[int(i)]["size"], 0.9)
        pr = doc["projections"][int(i)]
        shape = (size[pr["target"]], size[pr["source"]])
        return np.ones(shape, bool) if "mask" in name else np.full(shape, 0.5)

    net = snnkit.Network.from_manifest(doc, value)
    assert net.to_manifest()[0] == doc, f"{where}: the manifest differs from what snnkit writes"


def _readme(scope, d):
    assert (d / "net.snn").exists() and (d / "raster.png").exists()
    assert snnkit.Result.load(d / "out.npz").states["hidden"]["v"].shape == (50, 8, 100)
    assert (d / "out_weights.png").exists() and (d / "build" / "net" / "report.txt").exists()


def _user_guide(scope, d):
    assert (d / "example.snn").exists()
    assert (d / "build" / "example" / "report.txt").exists()
    assert scope["res"].spikes["exc"].shape == (100, 8, 20)
    assert scope["w"]  # weights read back from the (emulated) board
    board = snnkit.Result.load(d / "board.npz")
    net = snnkit.quantize(snnkit.load(d / "example.snn"))[0]  # as the board holds it
    ref = snnkit.simulate(net, np.load(d / "in.npy"), backend="fixed")
    for k, s in ref.spikes.items():
        assert torch.equal(board.spikes[k], s), k
    assert (d / "v.png").exists() and (d / "board.png").exists() and (d / "mlp.snn").exists()


def _hardware(scope, d):
    ref = snnkit.simulate(scope["net"], scope["inputs"], backend="fixed",
                          record=("v", "i", "weights"))
    for k, s in ref.spikes.items():
        assert torch.equal(scope["res"].spikes[k], s), k


CHECKS = {"README.md": _readme, "user-guide.md": _user_guide, "hardware.md": _hardware}


# --------------------------------------------------------------------------- figures


def readme_figures():
    spec = importlib.util.spec_from_file_location("readme_figures",
                                                  ROOT / "benchmarks" / "readme_figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_demo_table_is_what_the_script_makes_of_the_demo_summary():
    fig = readme_figures()
    summary = json.loads(fig.SUMMARY.read_text())
    assert fig.section((ROOT / "README.md").read_text()) == fig.render(summary)


def test_user_guide_demo_output_quotes_the_demo_summary():
    fig = readme_figures()
    summary = json.loads(fig.SUMMARY.read_text())["conversion"]
    guide = (ROOT / "docs" / "user-guide.md").read_text()
    for row in summary["rows"]:
        acc, spikes = fig.cells(row)
        assert re.search(rf"^{re.escape(row['path'])} +{re.escape(acc)} +{re.escape(spikes)} ",
                         guide, re.M), row["path"]
    assert f"identical predictions on {summary['fpga_equals_fixed']}/" in guide
    seq = json.loads(fig.SUMMARY.read_text())["sequences"]
    for row in seq["rows"]:
        acc, spikes = fig.cells(row)
        assert re.search(rf"^{re.escape(row['path'])} +{re.escape(acc)} +{re.escape(spikes)} ",
                         guide, re.M), row["path"]
    n = seq["samples"]
    assert (f"equal the QRNN's on {seq['float_equals_qrnn']}/{n} samples (float), "
            f"{seq['fixed_equals_qrnn']}/{n} (fixed point)") in guide
    assert (f"every spike equal to the fixed-point simulator's on {seq['fpga_equals_fixed']}/"
            f"{seq['fpga_samples']} samples") in guide


def test_architecture_map_names_every_module_and_only_real_ones():
    """docs/architecture.md matches the tree: every module and C source of the package is on
    the map, and every `file.py` / `file.c` / `file.v` the map names exists."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    pkg = ROOT / "snnkit"
    sources = [p for p in pkg.rglob("*") if p.suffix in (".py", ".c")
               and "__pycache__" not in p.parts and p.name != "__init__.py"
               and not {"hdl", "sim", "firmware"} & set(p.relative_to(pkg).parts)]
    missing = [str(p.relative_to(pkg)) for p in sources if p.name not in text]
    assert not missing, f"docs/architecture.md does not name: {missing}"
    named = set(re.findall(r"([\w/]+\.(?:py|c|v))\b", text))
    known = {p.name for p in sources} | {p.name for p in (ROOT / "hdl").glob("*.v")}
    ghosts = [n for n in named if n not in known and n != "__init__.py"
              and not (pkg / n).exists() and not (ROOT / n).exists()]
    assert not ghosts, f"docs/architecture.md names files not in the tree: {ghosts}"
