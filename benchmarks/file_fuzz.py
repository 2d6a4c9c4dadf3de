"""Damaged network files: how loading thousands of them ends (tests/test_corrupt_files.py is
the short version).

Real files (the test fixture network with and without STDP, as .snn and as snnkit-exported
.nir) are damaged at random: 1-4 bits flipped, a run of 1-64 bytes overwritten, cut short,
or spliced (the start of one file and the end of another). Each outcome is counted:
NetworkError naming the file (the target: every file that does not load the original), the
original network exactly (a byte nothing reads was hit: a zip timestamp, HDF5 free space),
another exception (must be 0), another network (must be 0).

Usage: python benchmarks/file_fuzz.py [--n 1500] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

import nir

import snnkit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.conftest import make_net  # noqa: E402 - the fixture network of the test suite


def signature(net):
    manifest, arrays = net.to_manifest()
    return repr(manifest), {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in arrays.items()}


def damage(rng: random.Random, files: list[bytes]) -> tuple[bytes, list[int], str]:
    """A damaged copy, the indices of the files it may still equal, and how it was made."""
    k = rng.randrange(len(files))
    data = bytearray(files[k])
    kind = rng.choice(["flip", "overwrite", "truncate", "splice"])
    if kind == "flip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif kind == "overwrite":
        i = rng.randrange(len(data))
        n = min(rng.randint(1, 64), len(data) - i)
        data[i:i + n] = bytes(rng.randrange(256) for _ in range(n))
    elif kind == "truncate":
        data = data[:rng.randrange(len(data))]
    else:
        other = files[1 - k]
        return (bytes(data[:rng.randrange(len(data) + 1)])
                + other[rng.randrange(len(other) + 1):]), [0, 1], kind
    return bytes(data), [k], kind


def run(suffix: str, n: int, seed: int, work: Path) -> collections.Counter:
    nets = [make_net(0), make_net(1, stdp=True)]
    files, sigs = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, net in enumerate(nets):
            path = work / f"orig{i}{suffix}"
            if suffix == ".snn":
                net.save(path)
                sigs.append(signature(snnkit.load(path)))
            else:
                nir.write(path, snnkit.to_nir(make_net(i, per_neuron=False)))
                sigs.append(signature(snnkit.from_nir(path, dt=1e-3)))
            files.append(path.read_bytes())
        rng, out = random.Random(seed), collections.Counter()
        path = work / f"damaged{suffix}"
        for _ in range(n):
            data, allowed, kind = damage(rng, files)
            path.write_bytes(data)
            try:
                net = snnkit.load(path) if suffix == ".snn" else snnkit.from_nir(path, dt=1e-3)
            except snnkit.NetworkError as e:
                out["NetworkError" if str(e).startswith(str(path)) else "error, file unnamed"] += 1
                continue
            except Exception as e:  # noqa: BLE001 - what this benchmark counts
                out[f"other exception: {type(e).__name__}: {str(e)[:60]}"] += 1
                continue
            same = signature(net) in [sigs[i] for i in allowed]
            out["the original network" if same else f"another network ({kind})"] += 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1500, help="damaged files per format")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print("| format | damaged files | NetworkError naming the file | loads the original "
          "exactly | another exception | another network | seconds |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in (".snn", ".nir"):
            t0 = time.perf_counter()
            c = run(suffix, args.n, args.seed, Path(tmp))
            other = sum(v for k, v in c.items() if k.startswith("other"))
            wrong = sum(v for k, v in c.items() if k.startswith("another"))
            print(f"| {suffix} | {args.n:,} | {c['NetworkError']:,} | "
                  f"{c['the original network']:,} | {other} | {wrong} | "
                  f"{time.perf_counter() - t0:.0f} |")
            for k, v in c.items():
                if k.startswith(("other", "another", "error")):
                    print(f"  {v} x {k}")


if __name__ == "__main__":
    main()
