"""Convolution projections: the same spikes as their dense expansion in both simulators (bit
for bit in fixed point), validation, the .snn file (version 2; version 1 still loads) and the
compiler's expansion."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import snnkit
from snnkit import NetworkError
from snnkit.compiler import HardwareConfig, build_images
from snnkit.conv import Conv, conv_sum

DATA = Path(__file__).parent / "data"


def _conv_net(seed=0, recurrent=False, delay=0, current=False):
    """in [2, 7, 7] -conv(stride 2, pad 1)-> a [4, 4, 4] -grouped dilated conv-> b [4, 2, 2]
    -> out [3]; optionally a delayed recurrent conv a -> a and current inputs."""
    rng = np.random.default_rng(seed)
    net = snnkit.Network()
    net.add_input("in", (2, 7, 7), encoding="current" if current else "spikes")
    net.add_population("a", (4, 4, 4), snnkit.CubaLIF(alpha=0.5, beta=0.8, threshold=1.0))
    net.add_population("b", (4, 2, 2), snnkit.LIF(beta=0.9, threshold=0.8))
    net.add_population("out", 3, snnkit.IF(threshold=1.5))
    net.connect_conv("in", "a", rng.normal(0.1, 0.6, (4, 2, 3, 3)), stride=2, padding=1,
                     delay=delay)
    net.connect_conv("a", "b", rng.normal(0.2, 0.5, (4, 2, 2, 2)), dilation=2, groups=2)
    if recurrent:
        net.connect_conv("a", "a", rng.normal(-0.2, 0.3, (4, 4, 3, 3)), padding=1, delay=1)
    net.connect("b", "out", rng.normal(0.0, 0.4, (3, 16)))
    return net


def _dense(net):
    """The same network with every convolution as a masked dense projection."""
    out = snnkit.Network(dt=net.dt, quantization=net.quantization)
    for p in net.populations:
        if p.is_input:
            out.add_input(p.name, p.size, p.encoding)
        else:
            out.add_population(p.name, p.size, p.neuron)
    for pr in net.projections:
        out.connect(pr.source, pr.target, pr.dense_weight(), mask=pr.connections(),
                    delay=pr.delay)
    return out


def _inputs(current=False, steps=25, batch=3, seed=1):
    rng = np.random.default_rng(seed)
    if current:
        return rng.uniform(-0.5, 1.5, (steps, batch, 98))
    return rng.random((steps, batch, 98)) < 0.35


@pytest.mark.parametrize("recurrent, delay, current", [
    (False, 0, False), (True, 2, False), (False, 1, True)])
@pytest.mark.parametrize("backend", ["float", "fixed"])
def test_conv_equals_dense_expansion(backend, recurrent, delay, current):
    net = _conv_net(recurrent=recurrent, delay=delay, current=current)
    if backend == "fixed":
        net, _ = snnkit.quantize(net)
    x = _inputs(current)
    got = snnkit.simulate(net, x, backend=backend, record="v")
    want = snnkit.simulate(_dense(net), x, backend=backend, record="v")
    for name in ("a", "b", "out"):
        assert 0 < got.spikes[name].float().mean() < 1, f"{name} silent: test void"
        if backend == "fixed":  # exact integers: every spike and every membrane value
            assert torch.equal(got.spikes[name], want.spikes[name]), name
            assert torch.equal(got.states[name]["v"], want.states[name]["v"]), name
        else:  # float sums in another order: membranes agree to rounding
            torch.testing.assert_close(got.states[name]["v"], want.states[name]["v"],
                                       rtol=1e-5, atol=1e-5)


def test_fixed_conv_sum_exact_beyond_float32():
    """Partial sums past 2**24 (16-bit weights, wide current values) stay exact: float64, or
    int64 past 2**53, against the int64 dense product."""
    g = torch.Generator().manual_seed(0)
    conv = Conv.make((3, 6, 6), (5, 3, 3, 3), padding=1)
    k = torch.randint(-(1 << 15), 1 << 15, (5, 3, 3, 3), generator=g)
    x = torch.randint(-(1 << 30), 1 << 30, (4, 108), generator=g)
    want = x @ torch.from_numpy(conv.dense(k.numpy())).T
    for bound in (1 << 40, 1 << 60):
        assert torch.equal(conv_sum(x, k, conv, bound), want)


def test_conv_geometry_matches_torch():
    rng = np.random.default_rng(2)
    for kw in ({"stride": (2, 1), "padding": (0, 2)}, {"dilation": 2, "groups": 3},
               {"stride": 3, "padding": 1, "groups": 1}):
        g = kw.get("groups", 1)
        k = rng.normal(size=(6, 6 // g, 3, 2))
        conv = Conv.make((6, 9, 8), k.shape, **kw)
        x = rng.normal(size=(2, 6, 9, 8))
        ref = F.conv2d(torch.from_numpy(x), torch.from_numpy(k), **conv.options())
        assert tuple(ref.shape[1:]) == conv.out_shape
        assert np.allclose(x.reshape(2, -1) @ conv.dense(k).T, ref.reshape(2, -1).numpy())
        assert conv.n_synapses() == conv.structure().sum()


@pytest.mark.parametrize("shape, kshape, kw", [
    ((2, 34, 34), (16, 2, 5, 5), {"stride": 2}),  # 16 outputs a group: vector adds
    ((16, 9, 9), (32, 16, 3, 3), {"stride": 2, "padding": 1}),
    ((6, 9, 8), (6, 2, 3, 2), {"dilation": 2, "groups": 3}),  # 2 a group: scalar adds
    ((4, 7, 7), (8, 1, 3, 3), {"stride": (2, 1), "padding": (0, 2), "groups": 4}),
    ((3, 5, 6), (5, 3, 1, 1), {}),
    # 5x5 strides: 25 classes of positions, more than the kernel sorts spikes into
    ((2, 23, 23), (16, 2, 5, 5), {"stride": 5, "padding": 1}),
    # 9x9 taps of 64 outputs: kernel offsets past the packed table's 12 bits (pair table)
    ((1, 12, 12), (64, 1, 9, 9), {"padding": 2}),
])
def test_event_driven_conv_sums_equal_torch(shape, kshape, kw):
    """Sparse binary spikes on the CPU sum event by event (snnkit/_conv_kernel.c): the same
    integers as torch's convolution in fixed point, the same floats up to summation order;
    dense activity goes to torch's convolution."""
    import snnkit.conv as cv

    g = torch.Generator().manual_seed(sum(shape))
    conv = Conv.make(shape, kshape, **kw)
    x = torch.rand(40, int(np.prod(shape)), generator=g) < 0.08
    kf = torch.randn(kshape, generator=g)
    ki = torch.randint(-500, 500, kshape, generator=g)
    bound = int(ki.abs().sum())
    assert cv._event_sum(x, ki, conv, bound) is not None, "event path not taken: test void"
    dense = torch.from_numpy(conv.dense(ki.numpy())).T
    got = conv_sum(x, ki, conv, bound)
    assert got.dtype == torch.int32 and torch.equal(got.long(), x.long() @ dense)
    threads = torch.get_num_threads()
    try:  # frames taken in chunks by 3 threads: the same sums
        torch.set_num_threads(3)
        assert torch.equal(conv_sum(x, ki, conv, bound), got)
    finally:
        torch.set_num_threads(threads)
    ref = F.conv2d(x.float().reshape((40,) + shape), kf, **conv.options()).reshape(40, -1)
    torch.testing.assert_close(conv_sum(x, kf, conv), ref, rtol=1e-5, atol=1e-5)
    busy = torch.rand(40, int(np.prod(shape)), generator=g) < 0.6
    assert cv._event_sum(busy, ki, conv, bound) is None
    assert torch.equal(conv_sum(busy, ki, conv, bound).long(), busy.long() @ dense)


@pytest.mark.parametrize("call, match", [
    (lambda n: n.connect_conv("flat", "a", np.ones((4, 2, 3, 3))), "flat"),
    (lambda n: n.connect_conv("in", "a", np.ones((4, 3, 3, 3))), "source has 2 channels"),
    (lambda n: n.connect_conv("in", "a", np.ones((4, 2, 3))), r"\[C_out, C_in/groups"),
    (lambda n: n.connect_conv("in", "a", np.ones((4, 2, 9, 9))), "does not fit"),
    (lambda n: n.connect_conv("in", "a", np.ones((4, 2, 3, 3))), r"output is \[4, 5, 5\]"),
    (lambda n: n.connect_conv("in", "a", np.ones((4, 2, 3, 3)), stride=0, padding=1), "stride"),
    (lambda n: n.connect_conv("in", "a", np.ones((3, 1, 3, 3)), groups=2, padding=1), "divide"),
    (lambda n: n.connect_conv("in", "a", np.full((4, 2, 3, 3), np.nan), padding=1), "NaN"),
    (lambda n: n.connect_conv("a", "a", np.ones((4, 4, 3, 3)), padding=1), "delay >= 1"),
    (lambda n: n.connect_conv("in", "a", np.ones((4, 2, 3, 3)), padding=1,
                              stdp=snnkit.STDP()), "plasticity is not supported"),
    (lambda n: n.add_population("bad", (2, 0, 3)), "size"),
])
def test_conv_validation_names_the_problem(call, match):
    net = snnkit.Network()
    net.add_input("in", (2, 7, 7))
    net.add_input("flat", 98)
    net.add_population("a", (4, 7, 7))
    with pytest.raises(NetworkError, match=match):
        call(net)


def test_file_round_trip_and_version(tmp_path):
    net, _ = snnkit.quantize(_conv_net(recurrent=True))
    net.save(tmp_path / "c.snn")
    back = snnkit.load(tmp_path / "c.snn")
    m, _ = back.to_manifest()
    assert m["version"] == 2 and m["populations"][1]["shape"] == [4, 4, 4]
    assert back.projections[1].conv == net.projections[1].conv
    x = _inputs()
    a, b = snnkit.simulate(net, x, backend="fixed"), snnkit.simulate(back, x, backend="fixed")
    assert all(torch.equal(a.spikes[k], b.spikes[k]) for k in a.spikes)


def test_version_1_file_still_loads():
    """tests/data/fixture_v1.snn was written by snnkit before format version 2
    (conftest.make_net(seed=5, stdp=True, quant=Quantization())), before make_net clipped the
    plastic input weights to their STDP bounds [-1, 1]: the file holds the unclipped ones."""
    from .conftest import make_net

    old = snnkit.load(DATA / "fixture_v1.snn")
    want = make_net(seed=5, stdp=True, quant=snnkit.Quantization())
    assert [p.shape for p in old.populations] == [None] * 4
    for a, b in zip(old.projections, want.projections):
        w = np.clip(a.weight, -1, 1) if a.stdp is not None else a.weight
        assert a.conv is None and np.array_equal(w, b.weight) and a.delay == b.delay
    want.projections[0].weight[:] = old.projections[0].weight  # the file's, unclipped
    x = snnkit.encoders.poisson(np.full((2, 12), 0.3), 20)
    r1, r2 = snnkit.simulate(old, x, backend="fixed"), snnkit.simulate(want, x, backend="fixed")
    assert all(torch.equal(r1.spikes[k], r2.spikes[k]) for k in r1.spikes)


def test_compiler_expands_conv_to_dense_words():
    net, _ = snnkit.quantize(_conv_net())
    rep, images = build_images(net)
    drep, dimages = build_images(_dense(net))
    assert images == dimages  # the same memory images as the dense expansion
    assert rep.weight_words == 98 * 64 + 64 * 16 + 16 * 3
    small = HardwareConfig.for_network(net, syn_max=4096)
    with pytest.raises(NetworkError, match=r"in->a: 72 shared weights -> 6,272 words"):
        build_images(net, small)


def test_nir_round_trip_keeps_convolutions(tmp_path):
    """to_nir writes Conv2d nodes; from_nir reads them back as the same convolutions, also
    through a .nir file, and the network runs identically."""
    import nir

    net = _conv_net(recurrent=True)
    with pytest.warns(snnkit.NIRApproximationWarning):
        graph = snnkit.to_nir(net)
    assert sum(type(n).__name__ == "Conv2d" for n in graph.nodes.values()) == 3
    nir.write(tmp_path / "c.nir", graph)
    with pytest.warns(snnkit.NIRApproximationWarning):
        back = snnkit.from_nir(tmp_path / "c.nir", dt=net.dt)
    by_name = {p.name: p for p in back.projections}
    for a in net.projections:  # a grouped convolution is written with its full kernel
        b = by_name[a.name]
        assert (a.conv is None) == (b.conv is None) and np.allclose(a.dense_weight(),
                                                                    b.dense_weight())
        assert a.conv is None or a.conv.groups > 1 or np.array_equal(a.weight, b.weight)
    x = _inputs()
    r1, r2 = snnkit.simulate(net, x), snnkit.simulate(back, x)
    assert all(torch.equal(r1.spikes[k], r2.spikes[k]) for k in r1.spikes)


def test_partitioned_conv_cores_compute_exactly_the_whole_network():
    """snnkit.partition hands each core its slice of a convolution's dense expansion (as the
    compiler stores it); the cores together compute exactly the whole network."""
    net, _ = snnkit.quantize(_conv_net(recurrent=True))
    x = torch.as_tensor(_inputs())
    ref = snnkit.simulate(net, x, backend="fixed", record="v")
    part = snnkit.partition(net, 2, HardwareConfig(n_max=256), allocator="in_order")
    assert part.crossings.get(1) and part.crossings.get(2)  # a->b and a->a cross the cores
    results = [snnkit.simulate(c.net, part.local_inputs(c.index, ref.spikes), backend="fixed",
                               record="v") for c in part.cores]
    got = part.merge({"in": x}, results, "fixed")
    for name in ref.spikes:
        assert torch.equal(got.spikes[name], ref.spikes[name]), name
        assert name == "in" or torch.equal(got.states[name]["v"].long(),
                                           ref.states[name]["v"].long()), name


def _fused_net(seed=0):
    """in [2, 11, 11] -conv-> a [16, 9, 9] (snntorch's delayed reset, per-neuron bias, beta
    and v_init: a wrong neuron order shows) -grouped conv, padding, stride 2-> b [64, 5, 5]
    (32 outputs a group: int16 sums in fixed point; delayed reset and bias per channel: the
    float LIF's update channel vector by channel vector) -grouped conv-> c [6, 3, 3] (CubaLIF,
    refractory, adaptive threshold, reset to a value: the general update; 3 outputs a group:
    scalar adds and spike transposes) -> out [3]; b -conv-> d [24, 3, 3] (beta and threshold
    per channel, 24 channels: the update's last vector has lanes masked) -> out. Every
    convolution's source spikes sparsely: each runs fused with its target."""
    rng = np.random.default_rng(seed)
    net = snnkit.Network()
    net.add_input("in", (2, 11, 11))
    na = 16 * 81
    net.add_population("a", (16, 9, 9), snnkit.LIF(
        beta=rng.uniform(0.7, 0.95, na), threshold=1.0, reset="delayed",
        bias=rng.normal(0.0, 0.05, na), v_init=rng.uniform(0, 0.5, na)))
    net.add_population("b", (64, 5, 5), snnkit.LIF(
        beta=0.9, threshold=1.0, reset="delayed", bias=np.repeat(rng.normal(-0.05, 0.05, 64), 25)))
    net.add_population("c", (6, 3, 3), snnkit.CubaLIF(
        alpha=0.5, beta=0.85, threshold=0.6, reset="value", v_reset=-0.1, refractory=2,
        adapt_plus=0.05, adapt_decay=0.9))
    net.add_population("d", (24, 3, 3), snnkit.LIF(
        beta=np.repeat(rng.uniform(0.8, 0.95, 24), 9), threshold=np.repeat(rng.uniform(
            0.5, 1.0, 24), 9)))
    net.add_population("out", 3, snnkit.LIF(beta=0.9, threshold=0.5))
    net.connect_conv("in", "a", rng.normal(0.15, 0.35, (16, 2, 3, 3)))
    net.connect_conv("a", "b", rng.normal(0.0, 0.4, (64, 8, 3, 3)), stride=2, padding=1,
                     groups=2)
    net.connect_conv("b", "c", rng.normal(0.1, 0.3, (6, 32, 3, 3)), groups=2)
    net.connect_conv("b", "d", rng.normal(0.05, 0.2, (24, 64, 3, 3)))
    net.connect("d", "out", rng.normal(0.0, 0.5, (3, 216)))
    net.connect("c", "out", rng.normal(0.0, 0.5, (3, 54)))
    return net


@pytest.mark.parametrize("backend", ["float", "fixed"])
def test_fused_conv_layers_equal_the_separate_sums(backend, monkeypatch):
    """A population fed by one convolution of sparse spikes runs with the sums fused into
    its neuron update (snn_conv_layer): every spike and recorded state bit for bit as the
    sums written out and fed to the layer kernel, with 1 and 3 threads; in fixed point also
    the torch path's integers."""
    import snnkit.conv as cv

    net = _fused_net()
    if backend == "fixed":
        net, _ = snnkit.quantize(net)
    x = np.random.default_rng(3).random((30, 5, 242)) < 0.08
    fused, real = [], cv.fused_layer

    def spy(*a, **k):
        out = real(*a, **k)
        fused.append(out is not None)
        return out

    monkeypatch.setattr(cv, "fused_layer", spy)
    rec = ("v", "i", "theta")
    got = snnkit.simulate(net, x, backend=backend, device="cpu", record=rec)
    assert fused == [True] * 4, "fused path not taken: test void"
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        three = snnkit.simulate(net, x, backend=backend, device="cpu", record=rec)
    finally:
        torch.set_num_threads(threads)
    monkeypatch.setattr(cv, "fused_layer", lambda *a, **k: None)
    want = [snnkit.simulate(net, x, backend=backend, device="cpu", record=rec)]
    if backend == "fixed":
        monkeypatch.setenv("SNNKIT_KERNELS", "0")
        want.append(snnkit.simulate(net, x, backend=backend, device="cpu", record=rec))
    for name in ("a", "b", "c", "d", "out"):
        assert 0 < got.spikes[name].float().mean() < 1, f"{name}: silent or saturated"
        for w in (three, *want):
            assert torch.equal(got.spikes[name], w.spikes[name]), name
            for var in rec:
                assert torch.equal(got.states[name][var], w.states[name][var]), (name, var)
