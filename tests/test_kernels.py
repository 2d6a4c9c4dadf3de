"""The CPU kernel (snnkit/_kernels.c) against the torch path it replaces.

Fixed point: bit for bit (spikes, v, i, theta after every step). Float: bit for bit where
every synaptic sum is exact in fp32 (weights on a dyadic grid), otherwise the same spikes up
to summation-order flips. Plus the fallbacks: no compiler, SNNKIT_KERNELS=0, and the
portable (non-AVX) build.
"""

import shutil
import warnings

import numpy as np
import pytest
import torch

import snnkit
from snnkit import IF, LIF, CubaLIF, kernels
from snnkit import plan as plan_mod

needs_cc = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                              reason="no C compiler")


def ff_net(rng, quant=None, n_a=300, dyadic=False, scale=1.0):
    """Feed-forward net with every neuron feature: a (CubaLIF, bias, refractory, adaptation,
    two blocks of columns, a size no multiple of 16, a current input), b (reset to a value,
    two spiking projections, delays), c (IF, delay 0)."""
    def w(shape, mu, sd):
        x = rng.normal(mu, sd, shape) * scale
        return np.round(x * 64) / 64 if dyadic else x

    net = snnkit.Network(quantization=quant)
    net.add_input("in", 37)
    net.add_input("cur", 5, encoding="current")
    net.add_population("a", n_a, CubaLIF(alpha=0.6, beta=0.9, threshold=rng.uniform(0.8, 1.5, n_a),
                                         refractory=2, bias=0.05, adapt_plus=0.1,
                                         adapt_decay=0.95))
    net.add_population("b", 21, LIF(beta=0.8, reset="value", v_reset=-0.1))
    net.add_population("c", 5, IF(threshold=2.0))
    net.connect("in", "a", w((n_a, 37), 0.15, 0.4), mask=rng.random((n_a, 37)) < 0.8)
    net.connect("cur", "a", w((n_a, 5), 0.0, 0.2))
    net.connect("in", "b", w((21, 37), 0.1, 0.3), delay=2)
    net.connect("a", "b", w((21, n_a), 0.02, 0.1), delay=1)
    net.connect("b", "c", w((5, 21), 0.5, 0.3))
    return net


def inputs(rng, net, steps=40, batch=3, p=0.3):
    return {"in": rng.random((steps, batch, 37)) < p,
            "cur": rng.normal(0.1, 0.3, (steps, batch, 5))}


def run(net, x, monkeypatch, kernel: bool, **kw):
    """simulate() with the kernel on or off; asserts which path really ran."""
    monkeypatch.setenv("SNNKIT_KERNELS", "1" if kernel else "0")
    calls = []
    real = kernels.run_layer

    def spy(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(kernels, "run_layer", spy)
    res = snnkit.simulate(net, x, device="cpu", record=("v", "i", "theta"), **kw)
    assert bool(calls) == kernel
    return res


def assert_identical(a, b):
    for k in a.spikes:
        assert torch.equal(a.spikes[k], b.spikes[k]), k
    for k in a.states:
        for var in ("v", "i", "theta"):
            assert torch.equal(a.states[k][var], b.states[k][var]), (k, var)


@needs_cc
@pytest.mark.parametrize("q", [
    snnkit.Quantization(),  # int8 weights
    snnkit.Quantization(weight_bits=12, state_bits=16, frac_bits=8),  # int16 weights
    snnkit.Quantization(weight_bits=8, state_bits=8, frac_bits=3),  # saturating states
], ids=["w8", "w12", "saturating"])
@pytest.mark.parametrize("batch", [1, 3])
def test_fixed_point_kernel_is_bit_exact_with_the_torch_path(q, batch, monkeypatch):
    rng = np.random.default_rng(batch)
    net, _ = snnkit.quantize(ff_net(rng, scale=4.0 if q.state_bits == 8 else 1.0), q)
    x = inputs(rng, net, batch=batch)
    fast = run(net, x, monkeypatch, True, backend="fixed")
    slow = run(net, x, monkeypatch, False, backend="fixed")
    assert_identical(fast, slow)
    assert int(fast.spikes["a"].sum()) > 100 and int(fast.spikes["c"].sum()) > 0
    if q.state_bits == 8:  # the saturating case really saturates
        assert int(fast.states["a"]["i"].max()) == 127


def kernel_lib():
    """The built kernel; on a CPU without AMX the AMX tests check that the tile path never
    runs and that the event sums give the same integers."""
    lib = kernels.load()
    assert lib is not None, "the CPU kernel did not build"
    return lib


@needs_cc
@pytest.mark.parametrize("batch", [1, 40])
def test_amx_sums_are_bit_exact_with_the_torch_path(batch, monkeypatch):
    # 37 + 300 sources (no multiple of 64), 300 and 21 targets (two column blocks, the last
    # no multiple of 32), 40 batch elements (a partial group of 32), recorded states
    lib = kernel_lib()
    rng = np.random.default_rng(7)
    net, _ = snnkit.quantize(ff_net(rng))
    x = inputs(rng, net, steps=19, batch=batch)
    before = lib.snn_amx_runs()
    fast = run(net, x, monkeypatch, True, backend="fixed")
    # every population with spiking sources, where the CPU has the tile unit; not for one
    # sample (the tiles would compute 32, 31 of them for nothing)
    assert lib.snn_amx_runs() - before == (3 if lib.amx and batch > 1 else 0)
    assert_identical(fast, run(net, x, monkeypatch, False, backend="fixed"))
    monkeypatch.setattr(lib, "amx", False)  # the event sums give the same integers
    assert_identical(fast, run(net, x, monkeypatch, True, backend="fixed"))


@needs_cc
def test_sparse_inputs_keep_the_event_sums(monkeypatch):
    lib = kernel_lib()
    rng = np.random.default_rng(8)
    net, _ = snnkit.quantize(ff_net(rng))
    x = inputs(rng, net, p=0.01, batch=32)
    before = lib.snn_amx_runs()
    fast = run(net, x, monkeypatch, True, backend="fixed")
    # "a" (1% of its sources spike) sums the rows of the few; "b" and "c", fed by the busy
    # "a" and "b", run on the tile unit (where the CPU has it)
    assert lib.snn_amx_runs() - before == (2 if lib.amx else 0)
    assert float(x["in"].mean()) < 0.02 and float(fast.spikes["a"].float().mean()) > 0.04
    assert_identical(fast, run(net, x, monkeypatch, False, backend="fixed"))


def test_pack_amx_layout():
    w = torch.randint(-128, 128, (70, 45), dtype=torch.int8)
    p = kernels.pack_amx(kernels.pad_weights(w), 45)
    assert p.shape == (4, 32, 16, 4)  # columns -> 64, sources -> 128
    k, n = torch.meshgrid(torch.arange(70), torch.arange(45), indexing="ij")
    assert torch.equal(p[n // 16, k // 4, n % 16, k % 4], w)
    assert int(p.abs().sum()) == int(w.abs().sum())  # the padding is zeros


@needs_cc
def test_8bit_sums_past_256_events_are_exact(monkeypatch):
    # the 8-bit kernel sums in int16 and flushes every 256 events: 600 sources, 90% active,
    # 400 x +127 then 200 x -128: partial sums (~45000) leave int16, the final ones fit
    lib = kernels.load()
    if lib is not None:
        monkeypatch.setattr(lib, "amx", False)  # the event sums, not the tile unit
    net = snnkit.Network(quantization=snnkit.Quantization(frac_bits=6))
    net.add_input("in", 600)
    net.add_population("h", 40, LIF(beta=0.5, threshold=500.0))
    wi = np.where(np.arange(600) < 400, 127, -128)
    net.connect("in", "h", np.tile(wi / 64.0, (40, 1)))
    x = np.random.default_rng(0).random((20, 4, 600)) < 0.9
    fast = run(net, x, monkeypatch, True, backend="fixed")
    slow = run(net, x, monkeypatch, False, backend="fixed")
    assert_identical(fast, slow)
    sums = torch.from_numpy(x.astype(np.int64) @ wi)
    assert sums.max() < 32767 and (x[..., :400].sum(-1) * 127).max() > 40000
    assert torch.equal(fast.states["h"]["i"][..., 0].long(), sums)


@needs_cc
def test_population_with_current_inputs_only(monkeypatch):
    # no spiking source: the kernel runs the neuron update on torch's dense input alone
    rng = np.random.default_rng(4)
    net = snnkit.Network()
    net.add_input("cur", 6, encoding="current")
    net.add_population("h", 33, CubaLIF(alpha=0.5, beta=0.9, refractory=1))
    net.connect("cur", "h", rng.normal(0.2, 0.5, (33, 6)))
    x = rng.normal(0.3, 0.5, (30, 2, 6))
    qnet, _ = snnkit.quantize(net)
    assert_identical(run(qnet, x, monkeypatch, True, backend="fixed"),
                     run(qnet, x, monkeypatch, False, backend="fixed"))
    assert_identical(run(net, x, monkeypatch, True), run(net, x, monkeypatch, False))


@needs_cc
def test_float_kernel_is_bit_exact_when_sums_are_exact(monkeypatch):
    # weights on a 1/64 grid: every fp32 sum is exact in any order, so only the neuron
    # arithmetic is compared, and it must match operation for operation (no FMA)
    rng = np.random.default_rng(5)
    net = ff_net(rng, dyadic=True)
    x = inputs(rng, net)
    fast = run(net, x, monkeypatch, True)
    slow = run(net, x, monkeypatch, False)
    assert_identical(fast, slow)
    assert int(fast.spikes["a"].sum()) > 100


@needs_cc
def test_float_kernel_spikes_agree_on_random_weights(monkeypatch):
    rng = np.random.default_rng(6)
    net = ff_net(rng, n_a=1000)
    x = inputs(rng, net, steps=60, batch=4)
    fast = run(net, x, monkeypatch, True)
    slow = run(net, x, monkeypatch, False)
    for k in fast.spikes:  # only a membrane at the threshold to ~1e-6 can flip
        assert (fast.spikes[k] != slow.spikes[k]).float().mean() < 1e-3, k
    dv = (fast.states["a"]["v"][0] - slow.states["a"]["v"][0]).abs().max()
    assert dv < 1e-5  # first step: summation order only


def bias_net(rng, n=270, dyadic=False):
    """A LIF layer with a bias and snntorch's delayed reset (the bias-only neuron update),
    270 targets (two column blocks, the last no multiple of 16), 300 sources; and a LIF
    without bias reset to a value, with a current input besides its spikes (a dense input)."""
    def w(shape, sd):
        x = rng.normal(0.0, sd, shape)
        return np.round(x * 256) / 256 if dyadic else x

    net = snnkit.Network()
    net.add_input("in", 300)
    net.add_input("cur", 3, encoding="current")
    net.add_population("h", n, LIF(beta=0.9, threshold=1.0, bias=rng.uniform(-0.05, 0.1, n),
                                   reset="delayed"))
    net.add_population("g", 40, LIF(beta=0.8, threshold=0.8, reset="value", v_reset=-0.1))
    net.connect("in", "h", w((n, 300), 0.12))
    net.connect("in", "g", w((40, 300), 0.1))
    net.connect("cur", "g", w((40, 3), 0.3))
    return net


def bias_inputs(rng, steps, batch):
    return {"in": rng.random((steps, batch, 300)) < 0.15,
            "cur": rng.normal(0.1, 0.3, (steps, batch, 3))}


@needs_cc
@pytest.mark.parametrize("batch", [9, 70])
def test_batch_blocked_float_sums_equal_one_sample_at_a_time(batch, monkeypatch):
    # batches of 8 or more sum float events for groups of samples at once (item_f32_bb,
    # with the update fused per vector of columns): each sample's sums must still be its rows
    # added in the same order, bit for bit the one-sample run (item_f32), on weights where
    # the order matters. 9: one interleaved octet + a single; 70: two groups of 35
    rng = np.random.default_rng(11)
    net = bias_net(rng)
    x = bias_inputs(rng, 30, batch)
    whole = run(net, x, monkeypatch, True)
    for b in (0, 7, 8, batch - 1):
        one = run(net, {k: v[:, b:b + 1] for k, v in x.items()}, monkeypatch, True)
        for k in ("h", "g"):
            assert torch.equal(whole.spikes[k][:, b:b + 1], one.spikes[k]), (k, b)
            for var in ("v", "i", "theta"):
                assert torch.equal(whole.states[k][var][:, b:b + 1], one.states[k][var]), var
    for k in ("h", "g"):
        assert 0.02 < float(whole.spikes[k].float().mean()) < 0.5, k


def pieces_net(rng, dyadic=False):
    """784 sources (the batch-blocked float sums cut each sample's list into 5 pieces of
    sources, two of the cuts on a 64-source boundary) into a LIF with bias and delayed reset
    (the fused update; 70 targets: slabs of 4 vectors a row, the last with 1 vector used), a
    CubaLIF (the general update; 40 targets: slabs of 3 vectors) and a LIF of 10 targets
    (slabs of 1 vector, 2 pieces)."""
    def w(shape, sd):
        x = rng.normal(0.0, sd, shape)
        return np.round(x * 64) / 64 if dyadic else x

    net = snnkit.Network()
    net.add_input("in", 784)
    net.add_population("h", 70, LIF(beta=0.9, threshold=1.0, bias=rng.uniform(-0.05, 0.1, 70),
                                    reset="delayed"))
    net.add_population("g", 40, CubaLIF(alpha=0.5, beta=0.9, threshold=1.5))
    net.add_population("o", 10, LIF(beta=0.8, threshold=1.0))
    net.connect("in", "h", w((70, 784), 0.06))
    net.connect("in", "g", w((40, 784), 0.06))
    net.connect("in", "o", w((10, 784), 0.06))
    return net


def pieces_inputs(rng, steps, batch):
    """Samples from 1% to 90% of sources spiking; the sparse ones (5%) with a burst of 100
    sources in a row all spiking: lists sparse overall with 64-source runs of 16 to 64 spikes
    (each branch of the spike lists' byte compression)."""
    dens = np.array([0.01, 0.05, 0.12, 0.3, 0.6, 0.9])[np.arange(batch) % 6]
    x = rng.random((steps, batch, 784)) < dens[None, :, None]
    start = rng.integers(0, 784 - 100, (steps, batch))
    for t in range(steps):
        for b in np.flatnonzero(dens == 0.05):
            x[t, b, start[t, b]:start[t, b] + 100] = True
    return {"in": x}


@needs_cc
def test_float_sums_over_source_pieces_are_exact(monkeypatch):
    # weights on a 1/64 grid: the sums are exact in any order, so the batch-blocked kernel
    # (lists cut into pieces, 1 to 4 vectors a slab) must sum exactly the spiking sources'
    # rows: bit for bit the torch path
    rng = np.random.default_rng(21)
    net = pieces_net(rng, dyadic=True)
    x = pieces_inputs(rng, 12, 12)
    fast = run(net, x, monkeypatch, True)
    assert_identical(fast, run(net, x, monkeypatch, False))
    for k in ("h", "g", "o"):
        assert 0.02 < float(fast.spikes[k].float().mean()) < 0.6, k


@needs_cc
def test_float_sums_over_source_pieces_equal_one_sample_at_a_time(monkeypatch):
    # the pieces' sums carried from one piece to the next: still each sample's rows added in
    # order from zero, bit for bit the one-sample run (item_f32: one list, no pieces), on
    # weights where the order matters
    rng = np.random.default_rng(22)
    net = pieces_net(rng)
    x = pieces_inputs(rng, 12, 9)
    whole = run(net, x, monkeypatch, True)
    for b in range(9):
        one = run(net, {"in": x["in"][:, b:b + 1]}, monkeypatch, True)
        for k in ("h", "g", "o"):
            assert torch.equal(whole.spikes[k][:, b:b + 1], one.spikes[k]), (k, b)
            for var in ("v", "i"):
                assert torch.equal(whole.states[k][var][:, b:b + 1], one.states[k][var]), var


@needs_cc
@pytest.mark.parametrize("slabs", [True, False], ids=["slabs", "copied"])
def test_float_sums_only_over_source_pieces_equal_one_sample_at_a_time(slabs):
    # run_layer(sums=True) (a group's input from outside, cpu_path._group), 9 samples: the
    # pieces' sums of 70 columns, from the projection's slabs or from the block's own copy
    # of the weights, bit for bit the one-sample sums (item_f32)
    lib = kernel_lib()
    rng = np.random.default_rng(23)
    plan = plan_mod.float_plan(pieces_net(rng), "cpu", None)
    pr, p, v0 = plan.projs[0], plan.neurons["h"], plan.v_init["h"]
    assert (pr.source, pr.target) == ("in", "h")
    steps, batch = 6, 9
    x = torch.from_numpy(pieces_inputs(rng, steps, batch)["in"])
    wt = pr.kernel_weights()
    wv = kernels.slabs(wt, 70, kernels.slab_lanes(lib, 70)) if slabs else None
    whole, _ = kernels.run_layer(lib, x.reshape(steps * batch, -1), wt, None, p, v0, steps,
                                 batch, wv=wv, sums=True)
    for b in range(batch):
        one, _ = kernels.run_layer(lib, x[:, b].contiguous(), wt, None, p, v0, steps, 1,
                                   sums=True)
        assert torch.equal(whole[:, b:b + 1], one), b
    assert float(whole.abs().min()) < float(whole.abs().max())


@needs_cc
@pytest.mark.parametrize("backend", ["float", "fixed"])
def test_bias_only_update_is_bit_exact_with_the_torch_path(backend, monkeypatch):
    # no synaptic current, refractory period or adaptation but a bias: the kernel's
    # bias-only update against neuron_step (float: sums exact on the 1/256 grid)
    rng = np.random.default_rng(12)
    net = bias_net(rng, dyadic=True)
    if backend == "fixed":
        net, _ = snnkit.quantize(net)
    x = bias_inputs(rng, 30, 9)
    fast = run(net, x, monkeypatch, True, backend=backend)
    assert_identical(fast, run(net, x, monkeypatch, False, backend=backend))
    assert int(fast.spikes["h"].sum()) > 1000


@needs_cc
def test_bf16_kernel_equals_fp32_kernel_on_bf16_rounded_weights(monkeypatch):
    # precision="bf16" rounds the weights to bf16 and sums in float32: bit for bit what the
    # float32 kernel gives on weights rounded beforehand (same summation order)
    rng = np.random.default_rng(7)
    net = ff_net(rng, n_a=520)
    x = inputs(rng, net)
    rounded = ff_net(np.random.default_rng(7), n_a=520)
    for pr in rounded.projections:
        if pr.source != "cur":  # current inputs go through torch's bf16 product either way
            pr.weight = torch.from_numpy(pr.weight).to(torch.bfloat16).double().numpy()
    bf = run(net, x, monkeypatch, True, precision="bf16")
    assert_identical(bf, run(rounded, x, monkeypatch, True, precision="bf16"))
    for k in ("b", "c"):  # no current input: the fp32 run is the same arithmetic
        assert torch.equal(bf.spikes[k], run(rounded, x, monkeypatch, True).spikes[k])
    fp = run(net, x, monkeypatch, True)
    assert not torch.equal(bf.states["a"]["v"], fp.states["a"]["v"])  # really rounded


@needs_cc
def test_plasticity_runs_on_the_step_kernel(monkeypatch):
    rng = np.random.default_rng(7)
    net = ff_net(rng)
    net.projections[0].stdp = snnkit.STDP()
    calls = []
    real = kernels.run_group
    monkeypatch.setattr(kernels, "run_group", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = inputs(rng, net)
    fast = run(net, x, monkeypatch, True, learning=True)
    assert calls == [1]  # "a" learns: one group; "b" and "c" on the layer kernel
    slow = run(net, x, monkeypatch, False, learning=True)
    assert torch.equal(fast.weights["in->a"], slow.weights["in->a"])


def test_disabled_kernel_is_not_built(monkeypatch):
    monkeypatch.setenv("SNNKIT_KERNELS", "0")
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "build", None)  # would raise if called
    assert kernels.load() is None


def test_without_a_compiler_the_simulator_warns_once_and_uses_torch(monkeypatch, tmp_path):
    monkeypatch.setenv("SNNKIT_KERNELS", "1")
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "_lib", None)
    rng = np.random.default_rng(8)
    net, _ = snnkit.quantize(ff_net(rng))
    x = inputs(rng, net)
    with pytest.warns(RuntimeWarning, match="no C compiler.*torch path"):
        a = snnkit.simulate(net, x, backend="fixed", device="cpu", record=("v",))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once only
        b = snnkit.simulate(net, x, backend="fixed", device="cpu", record=("v",))
    monkeypatch.setenv("SNNKIT_KERNELS", "0")
    c = snnkit.simulate(net, x, backend="fixed", device="cpu", record=("v",))
    for k in a.spikes:
        assert torch.equal(a.spikes[k], c.spikes[k]) and torch.equal(b.spikes[k], c.spikes[k])


@needs_cc
def test_build_is_cached_and_a_broken_compiler_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path))
    p = kernels.build(native=False)
    mtime = p.stat().st_mtime_ns
    assert kernels.build(native=False) == p and p.stat().st_mtime_ns == mtime
    assert [f.name for f in tmp_path.iterdir()] == [p.name]  # no temporary left behind
    bad = tmp_path / "cc"
    bad.write_text("#!/bin/sh\necho 'cc: boom' >&2\nexit 1\n")
    bad.chmod(0o755)
    with pytest.raises(RuntimeError, match="boom"):
        kernels.build(compiler=str(bad))


@needs_cc
def test_a_source_that_builds_only_without_native_flags_warns(monkeypatch, tmp_path):
    """A kernel that fails to compile for this CPU falls back to the baseline build, and
    says so, built or found in the cache (silently, a name clash once cost training 3.5x)."""
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path / "cache"))
    src = tmp_path / "_probe.c"
    src.write_text("#if defined(__AVX__)\n#error native only fails\n#endif\n"
                   "int snn_probe(void) { return 1; }\n")
    for _ in range(2):  # compiled, then from the cache
        with pytest.warns(RuntimeWarning, match="native only fails"):
            path = kernels.build(source=src, includes=())
        assert path.exists()
    ok = tmp_path / "_fine.c"
    ok.write_text("int snn_probe(void) { return 1; }\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernels.build(source=ok, includes=())


@needs_cc
def test_a_damaged_cache_entry_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("SNNKIT_KERNELS", "1")
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path))
    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "_lib", None)
    path = kernels.build()
    path.write_bytes(b"not a shared library")
    lib = kernels.load()
    assert lib is not None and lib.lanes in (8, 16) and path.stat().st_size > 1000


@needs_cc
def test_portable_build_is_bit_exact_too(monkeypatch, tmp_path):
    # the baseline build (no AVX: generic vectors, scalar spike lists, int32 8-bit sums)
    monkeypatch.setenv("SNNKIT_CACHE", str(tmp_path))
    lib = kernels.open_library(kernels.build(native=False))
    monkeypatch.setattr(kernels, "_tried", True)
    monkeypatch.setattr(kernels, "_lib", lib)
    rng = np.random.default_rng(9)
    net = ff_net(rng, dyadic=True)
    x = inputs(rng, net)
    assert_identical(run(net, x, monkeypatch, True), run(net, x, monkeypatch, False))
    qnet, _ = snnkit.quantize(net)
    assert_identical(run(qnet, x, monkeypatch, True, backend="fixed"),
                     run(qnet, x, monkeypatch, False, backend="fixed"))


def test_padded_weights_layout():
    w = torch.arange(6 * 40, dtype=torch.float32).view(6, 40)
    p = kernels.pad_weights(w, torch.int16)
    assert p.shape == (6, 48) and p.dtype == torch.int16  # 48 / 16 = 3, odd
    assert torch.equal(p[:, :40], w.to(torch.int16)) and not p[:, 40:].any()
    assert kernels.pad_weights(torch.zeros(3, 1000)).shape[1] == 1008  # not 1024
    assert plan_mod.Proj(0, "a", "b", 0, w.T, False, None, 0).wt.is_contiguous()


@needs_cc
def test_run_layer_refuses_mismatched_arguments():
    lib = kernels.load()
    plan = plan_mod.float_plan(ff_net(np.random.default_rng(0)), "cpu", None)
    pr, p = plan.projs[0], plan.neurons["a"]
    x = torch.zeros(6, 37, dtype=torch.bool)
    with pytest.raises(ValueError, match="int8 weights with torch.float32 states"):
        kernels.run_layer(lib, x, pr.kernel_weights().to(torch.int8), None, p, plan.v_init["a"],
                          3, 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.run_layer(lib, x.to(torch.uint8), pr.kernel_weights(), None, p,
                          plan.v_init["a"], 3, 2)
    with pytest.raises(ValueError, match="do not match"):
        kernels.run_layer(lib, x, pr.kernel_weights(), None, p, plan.v_init["a"], 4, 2)
    with pytest.raises(ValueError, match="weight slabs"):  # float wv: the slabs of all columns
        kernels.run_layer(lib, x, pr.kernel_weights(), None, p, plan.v_init["a"], 3, 2,
                          wv=kernels.slabs(pr.kernel_weights(), 16, lib.lanes))


def recurrent_net(rng):
    """Populations fed back by themselves only (cpu_path._recurrent): h, snntorch's RLeaky as
    it imports (LIF, bias, delayed reset, all-to-all self projection, spike input), 270
    neurons (no multiple of 16); g, the general update (CubaLIF, refractory period,
    adaptation) with two self projections (delays 1 and 3), spike and current inputs and
    input from h; and o, a layer after h. Unrounded weights: the summation order shows."""
    def w(shape, mu, sd):
        return rng.normal(mu, sd, shape)

    net = snnkit.Network()
    net.add_input("in", 100)
    net.add_input("cur", 3, encoding="current")
    net.add_population("h", 270, LIF(beta=0.9, threshold=1.0, bias=rng.uniform(-0.05, 0.1, 270),
                                     reset="delayed"))
    net.add_population("g", 37, CubaLIF(alpha=0.5, beta=0.9, threshold=0.9, refractory=1,
                                        adapt_plus=0.05, adapt_decay=0.9))
    net.add_population("o", 10, LIF(beta=0.9))
    net.connect("in", "h", w((270, 100), 0.02, 0.25))
    net.connect("h", "h", w((270, 270), -0.005, 0.1), delay=1)
    net.connect("in", "g", w((37, 100), 0.03, 0.2))
    net.connect("cur", "g", w((37, 3), 0.2, 0.3))
    net.connect("h", "g", w((37, 270), 0.0, 0.05))
    net.connect("g", "g", w((37, 37), -0.02, 0.2), delay=1)
    net.connect("g", "g", w((37, 37), 0.0, 0.2), delay=3)
    net.connect("h", "o", w((10, 270), 0.05, 0.2))
    return net


@needs_cc
@pytest.mark.parametrize("batch", [9, 70])
def test_batch_blocked_recurrent_sums_equal_the_step_kernel(batch, monkeypatch):
    # float populations fed back by themselves only, 8 or more samples: the batch-blocked
    # recurrent kernel (run_rec) must give bit for bit the step kernel's spikes and states,
    # whose sums it reorders across samples (each sample's rows still in the same order)
    from snnkit import cpu_path

    rng = np.random.default_rng(21)
    net = recurrent_net(rng)
    x = {"in": rng.random((30, batch, 100)) < 0.15,
         "cur": rng.normal(0.1, 0.3, (30, batch, 3))}
    calls = []
    real = kernels.run_rec
    monkeypatch.setattr(kernels, "run_rec", lambda *a, **k: calls.append(1) or real(*a, **k))
    fast = run(net, x, monkeypatch, True)
    assert len(calls) == 2  # h and g
    monkeypatch.setattr(cpu_path, "_recurrent", lambda *a, **k: False)
    assert_identical(fast, run(net, x, monkeypatch, True))  # the step kernel, all samples
    assert len(calls) == 2
    for b in (0, 8, batch - 1):  # one sample: the step kernel too
        one = run(net, {k: v[:, b:b + 1] for k, v in x.items()}, monkeypatch, True)
        for k in ("h", "g", "o"):
            assert torch.equal(fast.spikes[k][:, b:b + 1], one.spikes[k]), (k, b)
    for k in ("h", "g"):
        assert 0.02 < float(fast.spikes[k].float().mean()) < 0.5, k


@needs_cc
@pytest.mark.parametrize("q", [snnkit.Quantization(),
                               snnkit.Quantization(weight_bits=8, state_bits=8, frac_bits=4)],
                         ids=["w8", "saturating"])
def test_fixed_recurrent_on_the_tiles_is_bit_exact(q, monkeypatch):
    # fixed-point populations fed back by themselves only, 32 or more samples, 8-bit weights:
    # each step one integer matrix product on AMX (run_rec_amx; 40 samples: a partial second
    # group of 32), bit for bit the step kernel's and the torch path's spikes and states.
    # Without AMX the step kernel runs them (and the comparison still holds)
    from snnkit import cpu_path

    lib = kernel_lib()
    rng = np.random.default_rng(22)
    net, _ = snnkit.quantize(recurrent_net(rng), q)
    x = {"in": rng.random((30, 40, 100)) < 0.15, "cur": rng.normal(0.1, 0.3, (30, 40, 3))}
    calls = []
    real = kernels.run_rec_amx
    monkeypatch.setattr(kernels, "run_rec_amx",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    before = lib.snn_amx_runs()
    fast = run(net, x, monkeypatch, True, backend="fixed")
    # h and g on the tiles where the CPU has them (the o layer too: its layer AMX path)
    assert len(calls) == (2 if lib.amx else 0)
    assert lib.snn_amx_runs() - before == (3 if lib.amx else 0)
    assert_identical(fast, run(net, x, monkeypatch, False, backend="fixed"))
    monkeypatch.setattr(cpu_path, "_recurrent", lambda *a, **k: False)
    assert_identical(fast, run(net, x, monkeypatch, True, backend="fixed"))
    for k in ("h", "g"):
        assert 0.02 < float(fast.spikes[k].float().mean()) < 0.5, k
    if q.state_bits == 8:  # the saturating case really saturates
        assert int(fast.states["g"]["i"].max()) == 127 and int(fast.states["h"]["v"].min()) == -128


def test_bf16_parts_are_exact_and_fewest():
    rng = np.random.default_rng(21)
    w = torch.tensor(rng.normal(0, 0.3, (50, 40)), dtype=torch.float32)
    cases = {3: w,  # any float32 needs all three parts (24 significant bits)
             2: torch.round(w * 4096) / 4096,  # a 2^-12 grid below 1: at most 12 bits
             1: w.to(torch.bfloat16).float()}
    for want, ws in cases.items():
        parts = kernels.bf16_parts(ws)
        assert len(parts) == want
        for part in parts:  # each part is a bf16 value
            assert torch.equal(part, part.to(torch.bfloat16).float())
        total = sum(part.double() for part in parts)
        assert torch.equal(total, ws.double())  # exactly the weight
    assert len(kernels.bf16_parts(torch.zeros(3, 3))) == 1
    # the tiles flush subnormals: a weight whose parts could be one is refused
    assert kernels.bf16_parts(torch.tensor([[1.0, 1e-32]])) is None
    assert kernels.bf16_parts(torch.tensor([[1.0, float("inf")]])) is None


def test_pack_bf16_layout():
    rng = np.random.default_rng(22)
    w = torch.tensor(rng.normal(0, 0.3, (37, 45)), dtype=torch.float32)
    packed, n_parts = kernels.pack_bf16(kernels.pad_weights(w), 45)
    assert n_parts == 3 and packed.dtype == torch.int16
    assert tuple(packed.shape) == (4, 3, 32, 16, 2)  # 64 columns, 64 sources, pairs
    parts = kernels.bf16_parts(w)
    for s, c, q in ((0, 0, 0), (36, 44, 2), (5, 17, 1), (12, 33, 0)):
        bits = int(packed[c // 16, q, s // 2, c % 16, s % 2])
        want = int(parts[q][s, c].view(torch.int32)) >> 16
        assert bits == want
    assert not packed[2:, :, :, 13:].any() and not packed[:, :, 18:, :, 1].any()  # padding


def dense_net(rng, dyadic):
    """ff_net's populations (CubaLIF with every feature, a LIF reset to a value) and
    bias_net's (a LIF with bias and the delayed reset: the fused update) fed by dense spikes."""
    net = ff_net(rng, dyadic=dyadic)
    net.add_input("in2", 300)
    net.add_population("h", 270, LIF(beta=0.9, threshold=1.0,
                                     bias=rng.uniform(-0.05, 0.1, 270), reset="delayed"))
    w = rng.normal(0.0, 0.05, (270, 300))
    net.connect("in2", "h", np.round(w * 4096) / 4096 if dyadic else w)
    # g and k feed each other (the step kernel): g's input from "in2" summed beforehand (the
    # tiles' sums without the neuron update)
    net.add_population("g", 40, LIF(beta=0.8, threshold=0.8))
    net.add_population("k", 30, LIF(beta=0.8, threshold=0.5))
    wg = rng.normal(0.0, 0.05, (40, 300))
    net.connect("in2", "g", np.round(wg * 4096) / 4096 if dyadic else wg)
    net.connect("g", "k", np.full((30, 40), 0.0625))
    net.connect("k", "g", np.full((40, 30), -0.03125), delay=1)
    return net


@needs_cc
@pytest.mark.parametrize("dyadic", [True, False])
def test_float_sums_on_the_bf16_tiles(dyadic, monkeypatch):
    # dense spikes (40% of the sources), 70 samples (a second, partial group of 64): the
    # float layers sum on the AMX bf16 tiles where the CPU has them (each weight split
    # exactly into bf16 parts). Weights on a grid: every sum exact in any order, so the
    # spikes and states are the torch path's bit for bit; arbitrary weights: float32 sums of
    # the exact weights in another order (as the torch product's order is another)
    lib = kernel_lib()
    rng = np.random.default_rng(23)
    net = dense_net(rng, dyadic)
    x = inputs(rng, net, steps=12, batch=70, p=0.4)
    x["in2"] = rng.random((12, 70, 300)) < 0.4
    before = lib.snn_amx_runs()
    fast = run(net, x, monkeypatch, True)
    tiles = lib.snn_amx_runs() - before
    # a, c and h, and g's sums from "in2"; not b (two spike inputs: the event sums)
    assert tiles == (4 if lib.amx_bf16 else 0)
    slow = run(net, x, monkeypatch, False)
    if dyadic:
        assert_identical(fast, slow)
    else:
        for k in fast.spikes:
            assert (fast.spikes[k] != slow.spikes[k]).float().mean() < 1e-3, k
        for k in ("a", "h"):
            dv = (fast.states[k]["v"][0] - slow.states[k]["v"][0]).abs().max()
            assert dv < 1e-5  # first step: summation order only
    monkeypatch.setattr(lib, "amx_bf16", False)  # the event sums, as without the tiles
    events = run(net, x, monkeypatch, True)
    assert lib.snn_amx_runs() == before + tiles
    if dyadic:
        assert_identical(fast, events)
    for k in ("a", "h", "g", "k"):
        assert 0.02 < float(fast.spikes[k].float().mean()) < 0.6, k


@needs_cc
def test_snntorch_model_on_the_bf16_tiles_spikes_as_snntorch():
    # sim_speed's ff workload (snntorch's Leaky, imported through NIR), small but with a
    # batch and input density at which its hidden layer sums on the tiles: snntorch's spikes
    import importlib.util
    import sys
    from pathlib import Path

    pytest.importorskip("snntorch")
    path = Path(__file__).parents[1] / "benchmarks" / "sim_speed.py"
    spec = importlib.util.spec_from_file_location("sim_speed", path)
    sim_speed = sys.modules.get("sim_speed") or importlib.util.module_from_spec(spec)
    if "sim_speed" not in sys.modules:
        sys.modules["sim_speed"] = sim_speed
        spec.loader.exec_module(sim_speed)
    lib = kernel_lib()
    w = sim_speed.ff(n_in=200, n_hid=150, n_out=8, steps=30, batch=64, rate=0.3)
    before = lib.snn_amx_runs()
    res = sim_speed.check_same_as_peer(w)  # raises naming what differs
    assert res.flips == 0
    assert lib.snn_amx_runs() - before == (2 if lib.amx_bf16 else 0)


@needs_cc
@pytest.mark.parametrize("state_bits", [16, 20], ids=["narrow", "wide"])
def test_narrow_lif_update_is_bit_exact_with_the_torch_path(state_bits, monkeypatch):
    # plain LIF / IF populations (neuron_t.narrow with 16-bit states: the VNNI update), each
    # reset kind, bias on and off, thresholds of both signs, sizes no multiple of 16, inputs
    # that saturate; 20-bit states take the general loop: both equal neuron_step bit for bit
    rng = np.random.default_rng(5)
    net = snnkit.Network(quantization=snnkit.Quantization(weight_bits=12, state_bits=state_bits,
                                                          frac_bits=8))
    net.add_input("in", 40)
    net.add_population("s", 37, LIF(beta=rng.uniform(0.5, 1.0, 37),
                                    threshold=rng.uniform(-0.5, 2.0, 37), bias=0.03))
    net.add_population("v", 21, LIF(beta=0.85, reset="value", v_reset=-0.2))
    net.add_population("d", 19, LIF(beta=0.9, reset="delayed", threshold=1.5))
    net.add_population("f", 5, IF(threshold=2.0))
    w = rng.uniform(3.0, 7.9, (37, 40))  # sums past the 16-bit states, either way
    w[30:] *= -1
    net.connect("in", "s", w)
    for t in ("v", "d"):
        net.connect("in", t, rng.normal(0.2, 1.0, (net.population(t).size, 40)))
    net.connect("s", "f", rng.normal(0.0, 0.1, (5, 37)))
    net, _ = snnkit.quantize(net)
    narrow = []
    real = kernels.neuron_struct
    monkeypatch.setattr(kernels, "neuron_struct",
                        lambda *a, **k: (c := real(*a, **k), narrow.append(c.narrow))[0])
    x = {"in": rng.random((30, 3, 40)) < 0.4}
    fast = run(net, x, monkeypatch, True, backend="fixed")
    assert narrow and all(n == (state_bits == 16) for n in narrow)
    assert_identical(fast, run(net, x, monkeypatch, False, backend="fixed"))
    for k in ("s", "v", "d", "f"):
        assert 0 < int(fast.spikes[k].sum()) < fast.spikes[k].numel(), k
    if state_bits == 16:  # the inputs of "s" saturate
        i = fast.states["s"]["i"]
        assert int(i.max()) == (1 << 15) - 1 and int(i.min()) == -(1 << 15)


@needs_cc
def test_threads_on_torchs_openmp_team_give_the_same_results(monkeypatch):
    """On Linux the kernels' parallel loops run on torch's OpenMP team (its workers spin
    between torch's ops on the cores threads of our own would need): every spike and state
    the same as on threads of our own and on one thread, the simulator's and the training's
    kernels both."""
    from snnkit.training import kernel as tk

    rng = np.random.default_rng(5)
    net = pieces_net(rng)
    # and recurrent: a population of one block of columns (its samples split over the
    # threads) fed back by itself (its steps one after the other), and one of 300 neurons
    # all-to-all (the simulator's recurrent kernel: on the team its columns split over the
    # threads, a barrier each step; on threads of our own its samples in groups)
    net.connect("o", "o", rng.normal(0.0, 0.3, (10, 10)), delay=1)
    net.add_population("r", 300, LIF(beta=0.9, threshold=1.0))
    net.connect("in", "r", rng.normal(0.0, 0.06, (300, 784)))
    net.connect("r", "r", rng.normal(0.0, 0.1, (300, 300)), delay=1)
    x = pieces_inputs(rng, 20, 24)
    monkeypatch.setenv("SNNKIT_KERNELS", "1")
    libs = [kernels.load(), tk.load()]
    addr = kernels._openmp_parallel()
    assert addr is not None and all(lib.openmp for lib in libs), "torch's OpenMP not found"
    threads = torch.get_num_threads()
    runs = {}
    try:
        for name, n, team in (("team", 3, addr), ("own", 3, None), ("one", 1, addr)):
            torch.set_num_threads(n)
            for lib in libs:
                lib.snn_use_openmp(*(team or (None,) * 3))
            res = snnkit.simulate(net, x, device="cpu", record=("v", "i"))
            m = snnkit.SNN(net)
            out = m({k: torch.as_tensor(v).float() for k, v in x.items()})
            sum(s.float().sum() for s in out.spikes.values() if s.requires_grad).backward()
            runs[name] = res, {k: p.grad.clone() for k, p in m.named_parameters()}
    finally:
        torch.set_num_threads(threads)
        for lib in libs:
            lib.snn_use_openmp(*addr)
    (ref, gref) = runs["one"]
    assert gref and all(bool(g.abs().sum() > 0) for g in gref.values())
    for name in ("team", "own"):
        res, grads = runs[name]
        for k in ref.spikes:
            assert torch.equal(res.spikes[k], ref.spikes[k]), (name, k)
        for k in ref.states:
            for var in ("v", "i"):
                assert torch.equal(res.states[k][var], ref.states[k][var]), (name, k, var)
        for k in gref:
            assert torch.equal(grads[k], gref[k]), (name, k)
    assert 0 < float(ref.spikes["h"].float().mean()) < 0.5
    assert 0.01 < float(ref.spikes["r"].float().mean()) < 0.5
