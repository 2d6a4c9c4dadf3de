"""``python -m snnkit.map_header [--check] [--out PATH]``: write (or check) hdl/snn_map.vh,
the Verilog header of :mod:`snnkit.memory_map`. A module of its own: the package imports
``memory_map``, so running that module itself made runpy warn on every run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .memory_map import HEADER_PATH, verilog_header


def main(argv=None) -> int:
    """Write the header (or, with ``--check``, exit 1 when the file differs from it)."""
    ap = argparse.ArgumentParser(prog="python -m snnkit.map_header",
                                 description="Generate hdl/snn_map.vh from snnkit.memory_map")
    ap.add_argument("--check", action="store_true",
                    help="do not write: exit 1 when the file differs from what would be written")
    ap.add_argument("--out", type=Path, default=HEADER_PATH, help="header path")
    args = ap.parse_args(argv)
    text = verilog_header()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run python -m snnkit.map_header", file=sys.stderr)
            return 1
        print(f"{args.out} is current")
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
