"""Clock settings of the FPGA boards: the iCE40's SB_PLL40 (from icepll) and the 7-series
MMCM, and the clocks they can make."""

from __future__ import annotations

import functools
import re
import subprocess

from .fpga_tools import BuildError, tool

ICE40_PLL_MIN_MHZ = 16  # the lowest clock SB_PLL40 makes (icepll's range); below: the oscillator


def ice40_clock_below(f_max_mhz: float, f_in_mhz: float = 12.0) -> float | None:
    """The highest clock the iCE40 PLL makes exactly from ``f_in_mhz`` at or below
    ``f_max_mhz``, or None below its range. From 12 MHz the phase detector (10 .. 133 MHz)
    takes the input undivided, so the clock is 12 MHz x (DIVF + 1) / 2^DIVQ with the VCO in
    533 .. 1066 MHz and the output from 16 MHz (icepll's limits)."""
    clocks = [f_in_mhz * m / 2 ** q for m in range(1, 129) for q in range(1, 7)
              if 533 <= f_in_mhz * m <= 1066 and f_in_mhz * m / 2 ** q >= ICE40_PLL_MIN_MHZ]
    below = [f for f in clocks if f <= f_max_mhz + 1e-9]
    return max(below) if below else None


@functools.lru_cache(maxsize=16)  # build checks the clock before writing, then uses it
def ice40_pll(f_out_mhz: float, f_in_mhz: float = 12.0) -> dict[str, int]:
    """SB_PLL40_PAD divider settings for ``f_out_mhz`` from icepll (the icestorm tool).

    Returns
    -------
    {"DIVR", "DIVF", "DIVQ", "FILTER_RANGE", "achieved_khz"}
    """
    out = subprocess.run([tool("yowasp-icepll"), "-i", f"{f_in_mhz:g}", "-o", f"{f_out_mhz:g}"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise BuildError(f"--clock {f_out_mhz:g} MHz: icepll found no PLL setting "
                         f"({out.stdout.strip()} {out.stderr.strip()})")
    vals = {k: int(m.group(1)) for k in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE")
            if (m := re.search(rf"^{k}:\s+(\d+)", out.stdout, re.MULTILINE))}
    got = re.search(r"F_PLLOUT:\s+([\d.]+) MHz \(achieved\)", out.stdout)
    if len(vals) != 4 or got is None:
        raise BuildError(f"icepll: unexpected output:\n{out.stdout}")
    vals["achieved_khz"] = round(float(got.group(1)) * 1000)
    return vals


def xilinx_mmcm(f_out_mhz: float, f_in_mhz: float = 12.0) -> tuple[int, int]:
    """(CLKFBOUT_MULT_F, CLKOUT0_DIVIDE_F) as integers making exactly ``f_out_mhz`` with the
    VCO in 600 .. 1200 MHz (-1 speed grade).

    Raises
    ------
    BuildError : no integer setting makes that frequency exactly
    """
    for mult in range(2, 65):
        vco = f_in_mhz * mult
        if 600 <= vco <= 1200 and abs(vco / f_out_mhz - round(vco / f_out_mhz)) < 1e-9:
            div = round(vco / f_out_mhz)
            if 1 <= div <= 128:
                return mult, div
    raise BuildError(f"--clock {f_out_mhz:g} MHz: no MMCM setting makes it from "
                     f"{f_in_mhz:g} MHz (try a divisor of 12 MHz x 50..100, e.g. 50 or 100)")
