"""Where the hardware sources are: ``hdl/`` (the core's Verilog and its generated header),
``sim/`` (the RTL backends' simulation top ``tb_snn.v`` and the emulated board's harness
``emulator/main.cpp``) and ``firmware/`` (board tops, pin constraints, FPGA-only modules).

A source checkout keeps the three folders beside the package; a wheel carries copies inside
it (``snnkit/hdl``, ``snnkit/sim``, ``snnkit/firmware``: pyproject.toml maps the checkout's
folders in as package data). Every module that reads a hardware file takes its path from
here, so a pip-installed snnkit builds the RTL backends, the emulated board and the FPGA
bitstreams from any folder.
"""

from __future__ import annotations

from pathlib import Path

from .errors import SimulationError

PACKAGE = Path(__file__).resolve().parent
# installed: the copies inside the package; a checkout: the folders beside it
ROOT = PACKAGE if (PACKAGE / "hdl").is_dir() else PACKAGE.parent
HDL = ROOT / "hdl"
SIM = ROOT / "sim"
FIRMWARE = ROOT / "firmware"
TB_SNN = SIM / "tb_snn.v"  # the RTL backends' simulation top
EMULATOR = SIM / "emulator" / "main.cpp"  # the emulated board's harness


def require(*paths: Path) -> None:
    """Raise unless every path exists.

    Raises
    ------
    SimulationError : names the missing files and what to do
    """
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise SimulationError(f"hardware sources not found: {', '.join(missing)}; this "
                              f"snnkit install lacks its hdl/, sim/ and firmware/ files "
                              f"(reinstall it from a wheel or sdist of the project, or work "
                              f"in a source checkout)")
