"""Soak of the RTL command decoder on the emulated board (sim/uart/soak.py): rounds of junk
(random bytes, frames with bad CRCs, LEN over the buffer or wrong for the command), each
followed by one valid frame after a silence longer than the decoder's idle timeout. Reports
the bytes and frames of junk, the valid frames answered (all must be: no hang, resynchronised)
and whether the board's link counters add up with what came back.

Usage: python benchmarks/decoder_soak.py [--bytes 200000] [--rounds 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from snnkit.compiler import HardwareConfig
from snnkit.emulated_board import MAX_PAYLOAD, running

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sim.uart.soak import soak  # noqa: E402 - the soak driver beside the decoder's benches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bytes", type=int, default=200_000, help="junk bytes in all")
    ap.add_argument("--rounds", type=int, default=20, help="valid frames between the junk")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with running(HardwareConfig()) as (url, _):
        t0 = time.perf_counter()
        r = soak(url, args.bytes, args.rounds, args.seed, MAX_PAYLOAD)
        wall = time.perf_counter() - t0
    d = [a - b for a, b in zip(r.after, r.before)]
    print("| junk bytes | of them in valid-looking frames | valid frames answered | longest "
          "answer | board counters (frames, CRC errors, NACKs, replays) | add up | seconds |")
    print("|---|---|---|---|---|---|---|")
    problems = r.counters_add_up()
    print(f"| {r.junk_bytes:,} | {r.junk_frames:,} frames | {r.answered} / {r.probes} | "
          f"{1e3 * r.worst_answer_s:.0f} ms | {', '.join(f'{x:,}' for x in d)} | "
          f"{'yes' if not problems else '; '.join(problems)} | {wall:.0f} |")
    print("responses:", dict(r.responses))


if __name__ == "__main__":
    main()
