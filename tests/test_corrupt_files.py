"""Damaged network files: real .snn and .nir files with bits flipped, runs of bytes
overwritten, cut short, or spliced from two files (hypothesis). Loading one either raises
NetworkError naming the file, or gives exactly a network one of the originals holds (a byte
nothing reads was hit) -- never another exception, never another network.
benchmarks/file_fuzz.py runs thousands of these."""

import tempfile
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snnkit

from .conftest import make_net


def examples(n: int):
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow])


DIR = Path(tempfile.mkdtemp(prefix="snnkit-corrupt-"))


def signature(net: snnkit.Network):
    """What makes two networks the same: the manifest and the bytes of every array."""
    manifest, arrays = net.to_manifest()
    return repr(manifest), {k: (v.dtype.str, v.shape, v.tobytes()) for k, v in arrays.items()}


def snn_file(seed: int, stdp: bool) -> tuple[bytes, object]:
    path = DIR / f"orig{seed}.snn"
    net = make_net(seed, stdp)
    net.save(path)
    return path.read_bytes(), signature(snnkit.load(path))


def nir_file(seed: int) -> tuple[bytes, object]:
    path = DIR / f"orig{seed}.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(path, snnkit.to_nir(make_net(seed, per_neuron=False)))
        return path.read_bytes(), signature(snnkit.from_nir(path, dt=1e-3))


SNN = [snn_file(0, False), snn_file(1, True)]
NIR = [nir_file(0), nir_file(1)]


def load(data: bytes, suffix: str):
    path = DIR / f"damaged{suffix}"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if suffix == ".snn":
            return path, lambda: snnkit.load(path)
        return path, lambda: snnkit.from_nir(path, dt=1e-3)


def check(data: bytes, suffix: str, allowed) -> None:
    path, read = load(data, suffix)
    try:
        net = read()
    except snnkit.NetworkError as e:
        assert str(e).startswith(str(path)), e
        return
    assert signature(net) in allowed, "a damaged file loaded as another network"


@st.composite
def damaged(draw, files):
    """One file of ``files`` with flipped bits, an overwritten run, or cut short."""
    k = draw(st.integers(0, len(files) - 1))
    data = bytearray(files[k][0])
    kind = draw(st.sampled_from(["flip", "overwrite", "truncate"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "overwrite":
        i = draw(st.integers(0, len(data) - 1))
        run = draw(st.binary(min_size=1, max_size=64))
        data[i:i + len(run)] = run[:len(data) - i]
    else:
        data = data[:draw(st.integers(0, len(data) - 1))]
    return bytes(data), files[k][1]


@st.composite
def spliced(draw, files):
    """The start of one file and the end of the other."""
    a, b = files[0][0], files[1][0]
    i, j = draw(st.integers(0, len(a))), draw(st.integers(0, len(b)))
    return a[:i] + b[j:]


@examples(150)
@given(damaged(SNN))
def test_damaged_snn_raises_network_error_or_loads_the_original(case):
    data, original = case
    check(data, ".snn", [original])


@examples(60)
@given(spliced(SNN))
def test_spliced_snn_raises_network_error_or_loads_an_original(data):
    check(data, ".snn", [f[1] for f in SNN])


@examples(40)
@given(damaged(NIR))
def test_damaged_nir_raises_network_error_or_loads_the_original(case):
    data, original = case
    check(data, ".nir", [original])


@examples(15)
@given(spliced(NIR))
def test_spliced_nir_raises_network_error_or_loads_an_original(data):
    check(data, ".nir", [f[1] for f in NIR])


def test_a_weight_changed_in_an_exported_nir_file_is_caught():
    """A NIR file has no checksum: a changed weight is a valid file. snnkit's export
    carries a digest of the graph, so the import names the damage instead."""
    import h5py

    path = DIR / "edited.nir"
    path.write_bytes(NIR[0][0])
    with h5py.File(path, "a") as f:
        node = next(n for n in f["node/nodes"] if n.startswith("proj"))
        w = f[f"node/nodes/{node}/weight"]
        w[0, 0] = np.nextafter(w[0, 0], np.inf)
    with pytest.raises(snnkit.NetworkError, match="damaged"):
        snnkit.from_nir(path, dt=1e-3)
