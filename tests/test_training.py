"""snnkit.SNN: surrogate gradients, the forward pass against simulate (float and fixed, bit for
bit, and the Verilated RTL), the C kernel's gradients against autograd through neuron_step,
training that learns, export, checkpoints and bad input."""

import ctypes
import math

import numpy as np
import pytest
import torch

import snnkit
from snnkit.surrogate import Surrogate
from snnkit.training import SNN, evaluate, fit, fused, loops
from snnkit.training import kernel as train_kernel
from tests.conftest import make_net

ALL = ("weight", "bias", "threshold", "beta", "alpha")


@pytest.fixture(autouse=True)
def one_thread():
    """These networks are small: torch's thread team only adds waiting (3x on 2 busy cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def feedforward(seed=0, grid=True, delay=1):
    """Every model and feature on the kernel path: CubaLIF with refractoriness, a delayed
    projection, LIF reset to a value, IF with an adaptive threshold, a mask."""
    rng = np.random.default_rng(seed)

    def w(shape, mean, sd):
        x = rng.normal(mean, sd, shape)
        return np.round(x * 256) / 256 if grid else x

    net = snnkit.Network(name="ff")
    net.add_input("in", 20)
    net.add_population("a", 24, snnkit.CubaLIF(alpha=0.5, beta=0.85, refractory=1, bias=0.05))
    net.add_population("b", 12, snnkit.LIF(beta=0.7, reset="value", v_reset=-0.1,
                                           threshold=np.linspace(0.8, 1.2, 12)))
    net.add_population("c", 6, snnkit.IF(threshold=1.5, adapt_plus=0.25, adapt_decay=0.9))
    net.connect("in", "a", w((24, 20), 0.25, 0.4), mask=rng.random((24, 20)) < 0.7)
    net.connect("a", "b", w((12, 24), 0.3, 0.3), delay=delay)
    net.connect("in", "b", w((12, 20), 0.1, 0.2))
    net.connect("b", "c", w((6, 12), 0.5, 0.3))
    return net


def variant(net, kind):
    """The kernel's other rows. "delayed": snntorch's delayed reset (CubaLIF: c1 and c2; LIF:
    c1, with a bias) and per-neuron refractory periods, with the delayed reset and without (the
    IF); "bias": the LIF's bias alone (the plain row plus the bias), and a refractory period
    of 2 steps for the CubaLIF."""
    if kind in ("delayed", "bias"):
        net.populations[2].neuron.bias = np.linspace(-0.1, 0.2, 12)
    if kind == "bias":
        net.populations[1].neuron.refractory = 2
    if kind == "delayed":
        for pop in net.neuron_populations[:2]:
            pop.neuron.reset = "delayed"
        net.populations[1].neuron.refractory = np.arange(24) % 3
        net.populations[3].neuron.refractory = np.arange(6) % 2
    return net


def spikes_in(steps, batch, n, p=0.35, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((steps, batch, n)) < p)


def loss_of(res, pops=("a", "b", "c")):
    return sum((res.spikes[k].sum(0) * torch.arange(1, res.spikes[k].shape[2] + 1)).sum()
               for k in pops if k in res.spikes)


# --------------------------------------------------------------------------- surrogates


@pytest.mark.parametrize("name,slope,x,grad", [
    ("fast_sigmoid", 25.0, 0.1, 1 / 12.25),  # 1 / (1 + 25 * 0.1)^2
    ("fast_sigmoid", 25.0, -0.2, 1 / 36),
    ("arctan", 2.0, 0.5, 1 / (1 + (math.pi / 2) ** 2)),  # (2/2) / (1 + (pi/2 * 2 * 0.5)^2)
    ("arctan", 4.0, 0.0, 2.0),
    ("triangle", 1.0, 0.25, 0.75),  # 1 * max(0, 1 - 0.25)
    ("triangle", 2.0, 0.6, 0.0),  # outside |x| < 1/k
    ("straight_through", 1.0, 3.0, 1.0),
    ("straight_through", 0.5, -7.0, 0.5),
])
def test_surrogate_gradient_by_hand(name, slope, x, grad):
    t = torch.tensor([x], dtype=torch.float64, requires_grad=True)
    s = Surrogate(name, slope).spike(t)
    assert s.item() == (1.0 if x >= 0 else 0.0)  # the exact Heaviside forward
    s.sum().backward()
    assert t.grad.item() == pytest.approx(grad, rel=1e-12)


def test_surrogate_bad_spec():
    with pytest.raises(snnkit.NetworkError, match="unknown surrogate 'heaviside'"):
        Surrogate("heaviside")
    with pytest.raises(snnkit.NetworkError, match="slope"):
        Surrogate("arctan", -1.0)


# --------------------------------------------------------------------------- gradients by hand


def _one_lif(recurrent: float | None = None):
    net = snnkit.Network()
    net.add_input("in", 1)
    net.add_population("n", 1, snnkit.LIF(beta=0.5, threshold=1.0))
    net.connect("in", "n", 0.8)
    if recurrent is not None:
        net.connect("n", "n", recurrent, delay=1)
    return net


@pytest.mark.parametrize("path", ["kernel", "torch"])
def test_two_step_gradient_by_hand(path, monkeypatch):
    """v0 = w = 0.8 (no spike); v1 = 0.5 * v0 + w = 1.2 (spike). With L = s0 + s1:
    dL/dw = S'(v0 - 1) * 1 + S'(v1 - 1) * (0.5 + 1), S'(+-0.2) = 1 / (1 + 25 * 0.2)^2."""
    if path == "torch":
        monkeypatch.setenv("SNNKIT_KERNELS", "0")
    m = SNN(_one_lif(), trainable=("weight", "threshold"))
    res = m(torch.ones(2, 1, 1, dtype=torch.bool))
    assert res.spikes["n"][:, 0, 0].tolist() == [0.0, 1.0]
    res.spikes["n"].sum().backward()
    assert m.weights[0].grad.item() == pytest.approx(2.5 / 36, rel=1e-6)
    # dL/dthreshold = -S'(v0 - 1) - S'(v1 - 1)
    assert m.pops[0].threshold.grad.item() == pytest.approx(-2 / 36, rel=1e-6)


def test_gradient_through_a_recurrent_spike_by_hand():
    """w = 1.25: v0 = 1.25 spikes, reset to 0.25 (detached); v1 = 0.5 * 0.25 + w + r * s0 with
    r = -0.5: 0.875, no spike. L = s1: dL/dr = S'(v1 - 1) * s0; dL/dw = S'(v1 - 1) * (0.5 + 1
    + r * S'(v0 - 1)) (the spike s0 reaches step 1 through the recurrent weight)."""
    net = _one_lif(recurrent=-0.5)
    net.projections[0].weight[:] = 1.25
    m = SNN(net, trainable=("weight",))
    res = m(torch.ones(2, 1, 1, dtype=torch.bool))
    assert res.spikes["n"][:, 0, 0].tolist() == [1.0, 0.0]
    res.spikes["n"][1].sum().backward()
    d1, d0 = 1 / (1 + 25 * 0.125) ** 2, 1 / (1 + 25 * 0.25) ** 2
    assert m.weights[1].grad.item() == pytest.approx(d1, rel=1e-6)
    assert m.weights[0].grad.item() == pytest.approx(d1 * (1.5 - 0.5 * d0), rel=1e-6)


# --------------------------------------------------------------------------- forward = simulate


def _assert_same_as_simulate(net, x, arithmetic, snn_kw=None, **sim_kw):
    ref = snnkit.simulate(net, x, backend=arithmetic, record=("v", "i", "theta"), **sim_kw)
    has_alpha = any(hasattr(p.neuron, "alpha") for p in net.neuron_populations)
    m = SNN(net, arithmetic=arithmetic, trainable=ALL if has_alpha else ALL[:4],
            **(snn_kw or {}))
    got = m(x, record=("v", "i", "theta"))
    assert set(got.spikes) == set(ref.spikes)
    for k, s in ref.spikes.items():
        assert torch.equal(got.spikes[k].bool(), s), f"spikes of {k}"
    for pop, d in ref.states.items():
        for var, v in d.items():
            g = got.states[pop][var].detach()
            assert torch.equal(g, v.to(g.dtype)), f"{pop}.{var}"
    return m, got


@pytest.mark.parametrize("arithmetic", ["float", "fixed"])
@pytest.mark.parametrize("path", ["kernel", "torch"])
def test_delayed_reset_and_per_neuron_refractory_train_as_they_simulate(arithmetic, path,
                                                                         monkeypatch):
    """snntorch's delayed reset (c1 / c2 from the trained threshold and decays) and
    per-neuron refractory periods, on both paths: the simulators' spikes and states (the
    membrane differs from the reset by subtraction's), and a gradient reaches the threshold
    through c1."""
    if path == "torch":
        monkeypatch.setenv("SNNKIT_KERNELS", "0")
    net = feedforward(1, grid=arithmetic == "float")
    net.populations[1].neuron.reset = "delayed"  # CubaLIF: c1 and c2
    net.populations[2].neuron.reset = "delayed"
    net.populations[2].neuron.refractory = np.arange(12) % 3
    x = spikes_in(17, 5, 20, seed=1)
    m, got = _assert_same_as_simulate(net, x, arithmetic)
    assert (loops._use_kernel(m) is not None) == (path == "kernel")
    assert got.spikes["a"].detach().any() and got.spikes["b"].detach().any()
    net.populations[2].neuron.reset = "subtract"
    other = snnkit.simulate(net, x, backend=arithmetic, record="v").states["b"]["v"]
    assert not torch.equal(other.to(got.states["b"]["v"].dtype), got.states["b"]["v"].detach())
    loss_of(got).backward()
    assert m.pops[0].threshold.grad is not None and m.pops[0].threshold.grad.abs().sum() > 0


@pytest.mark.parametrize("arithmetic", ["float", "fixed"])
@pytest.mark.parametrize("memory", ["full", "lean"])
@pytest.mark.parametrize("kind", ["own", "delayed", "bias"])
def test_kernel_forward_equals_simulate(arithmetic, memory, kind):
    for seed in range(3):
        net = variant(feedforward(seed, grid=arithmetic == "float"), kind)
        m, _ = _assert_same_as_simulate(net, spikes_in(17, 5, 20, seed=seed), arithmetic,
                                        {"memory": memory, "chunk": 5})
        assert loops._use_kernel(m) is not None


def test_kernel_forward_equals_simulate_16_bit_weights():
    net = feedforward(1)
    net.quantization = snnkit.Quantization(weight_bits=16, state_bits=24, frac_bits=10)
    m, _ = _assert_same_as_simulate(net, spikes_in(12, 3, 20, seed=1), "fixed")
    assert m.weight(0).abs().max() > 127  # the int16 layout of the event sums


@pytest.mark.parametrize("arithmetic", ["float", "fixed"])
@pytest.mark.parametrize("stdp", [False, True])
def test_step_loop_forward_equals_simulate(arithmetic, stdp):
    """Recurrence, backward projections, delays, every model, and STDP in the forward pass."""
    for seed in range(3):
        _assert_same_as_simulate(make_net(seed, stdp=stdp), spikes_in(15, 3, 12, 0.4, seed),
                                 arithmetic)


def test_current_inputs_forward_equals_simulate():
    net = snnkit.Network()
    net.add_input("x", 6, encoding="current")
    net.add_input("s", 4)
    net.add_population("h", 8, snnkit.LIF(beta=0.8))
    net.connect("x", "h", np.random.default_rng(0).normal(0.3, 0.3, (8, 6)))
    net.connect("s", "h", 0.25)
    x = {"x": torch.from_numpy(np.random.default_rng(1).random((9, 4, 6))),
         "s": spikes_in(9, 4, 4)}
    for arithmetic in ("float", "fixed"):
        _assert_same_as_simulate(net, x, arithmetic)


# --------------------------------------------------------------------------- kernel = autograd


def _grads(m, x, monkeypatch=None, torch_path=False):
    if torch_path:
        monkeypatch.setenv("SNNKIT_KERNELS", "0")
    m.zero_grad(set_to_none=True)
    res = m(x, record=("v",))
    (loss_of(res) + 0.01 * res.states["b"]["v"].sum()).backward()
    if torch_path:
        monkeypatch.setenv("SNNKIT_KERNELS", "1")
    return res, {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("arithmetic", ["float", "fixed"])
@pytest.mark.parametrize("kind", ["own", "delayed", "bias"])
def test_kernel_gradients_equal_autograd_through_neuron_step(arithmetic, kind, monkeypatch):
    """delayed: the gradients of c1 / c2 reach the threshold, beta and alpha; with weights
    and biases trained only (c1 / c2 need none), float keeps the spikes in the sign of the
    saved derivative (no flag bytes) where no refractory period needs them."""
    net = variant(feedforward(3, grid=arithmetic == "float"), kind)
    x = spikes_in(12, 4, 20, seed=3)
    for memory, trainable in (("full", ALL), ("lean", ALL), ("full", ("weight", "bias"))):
        m = SNN(net, arithmetic=arithmetic, trainable=trainable, memory=memory, chunk=5)
        assert loops._use_kernel(m) is not None
        r1, g1 = _grads(m, x)
        r2, g2 = _grads(m, x, monkeypatch, torch_path=True)
        for k in r1.spikes:
            assert torch.equal(r1.spikes[k], r2.spikes[k])
        # alpha, beta where the model has them
        assert set(g1) == set(g2) and len(g1) == (4 + 9 if trainable == ALL else 4 + 3)
        for n in g1:
            scale = float(g2[n].abs().max()) or 1.0
            assert float((g1[n] - g2[n]).abs().max()) <= 1e-5 * scale, n


@pytest.mark.parametrize("amx", ["1", "0"])
def test_wide_projection_gradients_equal_autograd(amx, monkeypatch):
    """A projection into more targets than the row-by-row pass takes, from dense input
    spikes: its weight gradient on the tile unit (where there is one) or the transposed event
    pass, against autograd through neuron_step."""
    monkeypatch.setenv("SNNKIT_TRAIN_AMX", amx)
    rng = np.random.default_rng(7)
    net = snnkit.Network(name="wide")
    net.add_input("in", 40)
    net.add_population("a", 48, snnkit.LIF(beta=0.9))
    net.add_population("b", 10, snnkit.LIF(beta=0.8))
    net.connect("in", "a", rng.normal(0.1, 0.3, (48, 40)))
    net.connect("a", "b", rng.normal(0.2, 0.3, (10, 48)))
    m = SNN(net, trainable=("weight",))
    lib = train_kernel.load()
    runs = lib.snn_train_amx_runs()
    r1, g1 = _grads(m, spikes_in(20, 8, 40, seed=4))
    assert lib.snn_train_amx_runs() - runs == (
        2 if amx == "1" and lib.snn_train_amx_available() else 0)  # 20 steps: chunks of 10
    r2, g2 = _grads(m, spikes_in(20, 8, 40, seed=4), monkeypatch, torch_path=True)
    for k in r1.spikes:
        assert torch.equal(r1.spikes[k], r2.spikes[k])
    for n in g1:
        scale = float(g2[n].abs().max()) or 1.0
        assert float((g1[n] - g2[n]).abs().max()) <= 1e-5 * scale, n




def test_training_kernel_built_as_the_simulator_kernel():
    """The training kernel includes the simulator's (_kernels.c) and is built with the same
    native flags: a name defined in both makes the native build fail, and the build falls
    back to the baseline instruction set without a word (several times slower)."""
    from snnkit import kernels

    sim, lib = kernels.load(), train_kernel.load()
    assert sim is not None and lib is not None
    lib.snn_vector_lanes.restype = ctypes.c_int
    assert lib.snn_vector_lanes() == sim.lanes

@pytest.mark.parametrize("threads", [1, 2])
def test_wide_population_kernel_equals_autograd(threads, monkeypatch):
    """A population wider than a block of columns (300: 256 + a partial block of 44): the
    forward pass staging each block's weights (and with staging refused: few events) gives
    the torch path's spikes bit for bit; the backward neuron pass over whole rows (one thread:
    sub-blocks of 256) its gradients, for each set of sums the rows keep (threshold and bias,
    the bias alone, neither)."""
    rng = np.random.default_rng(11)
    net = snnkit.Network(name="wide_pop")
    net.add_input("in", 60)
    net.add_population("a", 300, snnkit.LIF(beta=0.9, bias=0.02))
    net.add_population("b", 10, snnkit.LIF(beta=0.8))
    net.connect("in", "a", rng.normal(0.08, 0.3, (300, 60)))
    net.connect("a", "b", rng.normal(0.05, 0.2, (10, 300)))
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for p, trainable in ((0.3, ("weight", "bias", "threshold")), (0.3, ("weight", "bias")),
                             (0.3, ("weight",)), (0.01, ("weight",))):
            m = SNN(net, trainable=trainable)
            x = spikes_in(12, 4, 60, p=p, seed=5)
            r1, g1 = _grads(m, x)
            r2, g2 = _grads(m, x, monkeypatch, torch_path=True)
            assert r1.spikes["a"].sum() > 0
            for k in r1.spikes:
                assert torch.equal(r1.spikes[k], r2.spikes[k])
            assert set(g1) == set(g2)
            for n in g1:
                scale = float(g2[n].abs().max()) or 1.0
                assert float((g1[n] - g2[n]).abs().max()) <= 1e-5 * scale, (trainable, n)
    finally:
        torch.set_num_threads(old)

def self_recurrent(seed=0, grid=True, kind="cuba"):
    """Populations fed back by their own spikes (snntorch's RLeaky) on the kernel path: "a"
    (CubaLIF with refractoriness and a bias, or kind "delayed": LIF with snntorch's delayed
    reset) with self projections of delays 1 and 9 (longer than the backward pass's chunks)
    and a current input, "b" (per-neuron thresholds) with one of delay 2."""
    rng = np.random.default_rng(seed)

    def w(shape, mean, sd):
        x = rng.normal(mean, sd, shape)
        return np.round(x * 256) / 256 if grid else x

    net = snnkit.Network(name="rec")
    net.add_input("in", 20)
    net.add_input("cur", 4, encoding="current")
    net.add_population("a", 24, snnkit.LIF(beta=0.9, reset="delayed", bias=0.05)
                       if kind == "delayed" else
                       snnkit.CubaLIF(alpha=0.5, beta=0.85, refractory=1, bias=0.05))
    net.add_population("b", 12, snnkit.LIF(beta=0.7, threshold=np.linspace(0.8, 1.2, 12)))
    net.add_population("c", 6, snnkit.IF(threshold=1.5, adapt_plus=0.25, adapt_decay=0.9))
    net.connect("in", "a", w((24, 20), 0.25, 0.4))
    net.connect("a", "a", w((24, 24), 0.0, 0.3), delay=1)
    net.connect("cur", "a", w((24, 4), 0.2, 0.2))
    net.connect("a", "a", w((24, 24), -0.05, 0.2), delay=9)
    net.connect("a", "b", w((12, 24), 0.3, 0.3))
    net.connect("b", "b", w((12, 12), 0.0, 0.4), delay=2)
    net.connect("b", "c", w((6, 12), 0.5, 0.3))
    return net


def _recurrent_input(steps, batch, seed):
    return {"in": spikes_in(steps, batch, 20, seed=seed),
            "cur": torch.from_numpy(np.random.default_rng(seed).random((steps, batch, 4)))}


@pytest.mark.parametrize("arithmetic", ["float", "fixed"])
@pytest.mark.parametrize("kind", ["cuba", "delayed"])
def test_self_projections_run_on_the_kernel_as_they_simulate(arithmetic, kind, monkeypatch):
    """Float weights off any grid (sums in the simulator's order: each self projection's
    apart, then the other inputs), batches below and above the simulator's recurrent kernel's
    (its step kernel then): spikes and states bit for bit."""
    calls = []
    run = fused.run
    monkeypatch.setattr(fused, "run", lambda *a, **k: calls.append(1) or run(*a, **k))
    for seed, batch, memory in ((0, 3, "full"), (1, 9, "full"), (1, 9, "lean")):
        net = self_recurrent(seed, grid=arithmetic == "fixed", kind=kind)
        m, got = _assert_same_as_simulate(net, _recurrent_input(17, batch, seed), arithmetic,
                                          {"memory": memory, "chunk": 5})
        assert got.spikes["a"].detach().any() and got.spikes["b"].detach().any()
    assert len(calls) == 3  # the fused kernel ran them


@pytest.mark.parametrize("arithmetic", ["float", "fixed"])
@pytest.mark.parametrize("kind", ["cuba", "delayed"])
def test_self_projection_gradients_equal_autograd_through_neuron_step(arithmetic, kind,
                                                                      monkeypatch):
    """The gradient reaches earlier steps through the recurrent weights (the backward pass
    step by step), across chunks (delay 9); memory="lean" (chunks of 4 steps recomputed from
    checkpoints, the own spikes' lists kept) gives the same."""
    calls = []
    run = fused.run
    monkeypatch.setattr(fused, "run", lambda *a, **k: calls.append(1) or run(*a, **k))
    net = self_recurrent(2, grid=arithmetic == "fixed", kind=kind)
    x = _recurrent_input(19, 4, 2)
    trainable = ALL if kind == "cuba" else ALL[:4]
    m = SNN(net, arithmetic=arithmetic, trainable=trainable)
    r1, g1 = _grads(m, x)
    r2, g2 = _grads(m, x, monkeypatch, torch_path=True)
    r3, g3 = _grads(SNN(net, arithmetic=arithmetic, trainable=trainable, memory="lean",
                        chunk=4), x)
    assert len(calls) == 2  # full and lean on the kernel
    for k in r1.spikes:
        assert torch.equal(r1.spikes[k], r2.spikes[k]) and torch.equal(r1.spikes[k], r3.spikes[k])
    assert set(g1) == set(g2) == set(g3) and len(g1) == (16 if kind == "cuba" else 15)
    tol = 1e-5 if arithmetic == "fixed" else 5e-5  # float32 sums in another order, 19 steps
    for n in g1:
        scale = float(g2[n].abs().max()) or 1.0
        assert scale > 0 and float((g1[n] - g2[n]).abs().max()) <= tol * scale, n
        assert float((g3[n] - g2[n]).abs().max()) <= tol * scale, n


@pytest.mark.parametrize("memory", ["full", "lean"])
def test_snntorch_default_leaky_trains_on_the_kernel_as_in_snntorch(memory):
    """snntorch's default Leaky (delayed reset) behind nn.Linear with biases, imported from its
    own NIR export: the kernel runs it, with snntorch's spikes and snntorch's own gradients
    of the weights and biases (the same surrogate; the membranes round differently)."""
    import warnings

    import snntorch as snn
    from snntorch import surrogate
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    steps, batch, n_in, n_h, n_out = 30, 4, 12, 16, 5
    fc1, fc2 = torch.nn.Linear(n_in, n_h), torch.nn.Linear(n_h, n_out)
    with torch.no_grad():
        fc1.weight.mul_(3)
        fc2.weight.mul_(3)

    def lif(n):  # the exporter needs per-neuron tensors
        return snn.Leaky(beta=torch.full((n,), 0.9), threshold=torch.ones(n), init_hidden=True)

    graph = export_to_nir(torch.nn.Sequential(fc1, lif(n_h), fc2, lif(n_out)),
                          torch.zeros(n_in))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", snnkit.NIRApproximationWarning)
        net = snnkit.from_nir(graph, convention="snntorch")
    x = spikes_in(steps, batch, n_in, 0.3, seed=1)
    sg = surrogate.fast_sigmoid(slope=25)
    l1, l2 = snn.Leaky(beta=0.9, spike_grad=sg), snn.Leaky(beta=0.9, spike_grad=sg)
    m1, m2, ref = l1.init_leaky(), l2.init_leaky(), ([], [])
    for t in range(steps):
        s1, m1 = l1(fc1(x[t].float()), m1)
        s2, m2 = l2(fc2(s1), m2)
        ref[0].append(s1)
        ref[1].append(s2)
    ref = [torch.stack(r) for r in ref]
    w = torch.arange(1, n_out + 1, dtype=torch.float32)

    def loss(s1, s2):
        return (s2.sum(0) * w).sum() + 0.1 * s1.sum()

    loss(*ref).backward()
    m = SNN(net, "fast_sigmoid", slope=25.0, trainable=("weight", "bias"), memory=memory,
            chunk=7)
    assert loops._use_kernel(m) is not None
    assert [net.population(p).neuron.reset for p in ("1", "3")] == ["delayed", "delayed"]
    res = m(x)
    for name, r in zip(("1", "3"), ref):
        assert 0 < float(r.detach().mean()) < 1, name
        assert torch.equal(res.spikes[name].detach(), r.detach()), name
    loss(res.spikes["1"], res.spikes["3"]).backward()
    for got, want in ((m.weights[0].grad, fc1.weight.grad), (m.weights[1].grad, fc2.weight.grad),
                      (m.pops[0].bias.grad, fc1.bias.grad), (m.pops[1].bias.grad, fc2.bias.grad)):
        assert float(want.abs().max()) > 0
        assert float((got - want).abs().max()) <= 1e-4 * float(want.abs().max())


@pytest.mark.parametrize("delay", [1, 9])
def test_lean_memory_gives_the_same_gradients(delay, monkeypatch):
    """Also a delay longer than the chunks (the source's gradient reaches chunks back)."""
    net = feedforward(4, delay=delay)
    x = spikes_in(23, 3, 20, seed=4)
    _, full = _grads(SNN(net, trainable=ALL), x)
    if delay > 1:  # against autograd through neuron_step, too
        _, ref = _grads(SNN(net, trainable=ALL), x, monkeypatch, torch_path=True)
        for n in full:
            assert torch.allclose(full[n], ref[n], rtol=1e-5, atol=1e-6), n
    for chunk in (1, 4, 7):
        res, lean = _grads(SNN(net, trainable=ALL, memory="lean", chunk=chunk), x)
        assert torch.equal(res.spikes["c"].bool(), snnkit.simulate(net, x).spikes["c"])
        for n in full:
            assert torch.allclose(full[n], lean[n], rtol=1e-5, atol=1e-6), (chunk, n)


def test_reset_gradient_detached_by_default(monkeypatch):
    net = feedforward(5)
    x = spikes_in(10, 2, 20, seed=5)
    monkeypatch.setenv("SNNKIT_KERNELS", "0")
    _, g_det = _grads(SNN(net, trainable=ALL), x)
    m = SNN(net, trainable=ALL, detach_reset=False)
    res, g_att = _grads(m, x)
    ref = snnkit.simulate(net, x)
    assert all(torch.equal(res.spikes[k].bool(), ref.spikes[k]) for k in ref.spikes)
    assert not torch.allclose(g_det["weights.0"], g_att["weights.0"])


# --------------------------------------------------------------------------- the RTL


def test_fixed_training_forward_equals_verilator():
    """Train a little in fixed point, export; the Verilated core spikes as training did."""
    from tests.test_hdl_nets import CONFIG, Q

    net = feedforward(6, delay=2)
    for pop in net.neuron_populations:  # the hardware holds one value per population
        pop.neuron.threshold = 1.0
        pop.neuron.bias = 0.0
    m = SNN(net, arithmetic="fixed", quantization=Q, trainable=("weight", "threshold"),
            per_neuron=False)
    x = spikes_in(14, 2, 20, seed=6)
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        (-loss_of(m(x))).backward()
        opt.step()
    trained = m.network()
    assert not np.array_equal(trained.projections[0].weight, net.projections[0].weight)
    want = m(x)
    rtl = snnkit.simulate(trained, x, backend="verilator", config=CONFIG)
    for k, s in rtl.spikes.items():
        assert torch.equal(s, want.spikes[k].bool()), k


# --------------------------------------------------------------------------- training


def _digits_net(seed=0, hidden=128):
    rng = np.random.default_rng(seed)
    net = snnkit.Network(name="digits")
    net.add_input("in", 64)
    net.add_population("hid", hidden, snnkit.LIF(beta=0.9))
    net.add_population("out", 10, snnkit.LIF(beta=0.9))
    net.connect("in", "hid", rng.normal(0, 1 / 8, (hidden, 64)))
    net.connect("hid", "out", rng.normal(0, 1 / math.sqrt(hidden), (10, hidden)))
    return net


@pytest.fixture(scope="module")
def digits():
    from snnkit import datasets

    xtr, ytr, xte, yte = datasets.digits()
    return xtr, ytr, xte[:200], yte[:200]


def test_training_learns_and_a_broken_gradient_does_not(digits):
    xtr, ytr, xte, yte = digits
    kw = dict(epochs=4, steps=6, lr=5e-3, batch_size=32, progress=False)
    m = SNN(_digits_net())
    before = evaluate(m, xte, yte, steps=6)["accuracy"]
    h = fit(m, xtr, ytr, **kw)
    assert h.loss[-1] < 0.5 * h.loss[0]
    after = evaluate(m, xte, yte, steps=6)["accuracy"]
    broken = SNN(_digits_net())  # gradient ascent: the same updates with the sign flipped
    for p in broken.parameters():
        p.register_hook(lambda g: -g)
    fit(broken, xtr, ytr, **kw)
    wrong = evaluate(broken, xte, yte, steps=6)["accuracy"]
    # seeds 0-2 of this set-up: trained 94.5-95.5%, untrained 3.5-11.5%, ascent 3-9.5%
    assert after >= 0.9 and before <= 0.2 and wrong <= 0.2, (after, before, wrong)


def test_fixed_training_learns_and_exports(digits, tmp_path):
    xtr, ytr, xte, yte = digits
    q = snnkit.Quantization(frac_bits=6)
    m = SNN(_digits_net(1), arithmetic="fixed", quantization=q, trainable=("weight",))
    fit(m, xtr, ytr, epochs=3, steps=6, lr=5e-3, batch_size=32, progress=False)
    own = evaluate(m, xte, yte, steps=6)
    assert own["accuracy"] >= 0.85
    path = tmp_path / "trained.snn"
    m.network().save(path)
    net = snnkit.load(path)
    assert net.quantization == q
    x = snnkit.encoders.regular(xte, 6)
    got = snnkit.simulate(net, x, backend="fixed").predict("out").numpy()
    assert np.array_equal(got, own["predictions"])


def test_float_export_reloads_with_the_same_predictions(digits, tmp_path):
    xtr, ytr, xte, yte = digits
    m = SNN(_digits_net(2), trainable=("weight", "bias", "threshold", "beta"))
    fit(m, xtr[:200], ytr[:200], epochs=2, steps=6, progress=False)
    net = m.network()
    assert isinstance(net.population("hid").neuron.beta, np.ndarray)  # per neuron
    net.save(tmp_path / "t.snn")
    back = snnkit.load(tmp_path / "t.snn")
    x = snnkit.encoders.regular(xte, 6)
    want = evaluate(m, xte, yte, steps=6)["predictions"]
    assert np.array_equal(snnkit.simulate(back, x).predict("out").numpy(), want)
    # the original network is not changed
    assert net.projections[0].weight is not m._source.projections[0].weight


def test_steps_default_to_eight_for_encoded_samples(digits):
    xtr, ytr, _, _ = digits
    m = SNN(_digits_net(3))
    assert evaluate(m, xtr[:64], ytr[:64])["accuracy"] == \
        evaluate(m, xtr[:64], ytr[:64], steps=8)["accuracy"]
    assert evaluate(m, xtr[:64], ytr[:64])["spikes"] == \
        evaluate(m, xtr[:64], ytr[:64], steps=8)["spikes"] != \
        evaluate(m, xtr[:64], ytr[:64], steps=4)["spikes"]
    h = fit(m, xtr[:64], ytr[:64], epochs=1, progress=False)  # no steps: trains at 8
    assert h.epochs == 1


def test_training_files_get_the_users_umask(digits, tmp_path):
    """Checkpoint, plot and history are written through temporary files (0600): renamed,
    they get the permissions of any new file, as the .snn files do."""
    import os

    from snnkit.training.fit import write_json
    xtr, ytr, _, _ = digits
    old = os.umask(0o027)
    try:
        fit(SNN(_digits_net(3)), xtr[:32], ytr[:32], epochs=1, steps=4, progress=False,
            checkpoint=tmp_path / "run.ckpt", plot=tmp_path / "p.png")
        write_json({"a": 1}, tmp_path / "h.json")
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == \
        {"run.ckpt": 0o640, "p.png": 0o640, "h.json": 0o640}


def test_checkpoint_resumes_to_the_same_result(digits, tmp_path):
    xtr, ytr, _, _ = digits
    kw = dict(epochs=3, steps=4, progress=False, encoding="poisson", seed=3)
    whole = SNN(_digits_net(3))
    h_whole = fit(whole, xtr[:160], ytr[:160], **kw)
    ck = tmp_path / "run.ckpt"
    part = SNN(_digits_net(3))
    fit(part, xtr[:160], ytr[:160], checkpoint=ck, callback=lambda e, h: e == 1, **kw)
    assert torch.load(ck, weights_only=True)["epoch"] == 1  # tensors and plain data only
    again = SNN(_digits_net(3))
    h = fit(again, xtr[:160], ytr[:160], checkpoint=ck, plot=tmp_path / "p.png", **kw)
    assert h.loss == h_whole.loss
    for a, b in zip(again.parameters(), whole.parameters()):
        assert torch.equal(a, b)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.png", "run.ckpt"]  # no temp left
    with pytest.raises(snnkit.NetworkError, match=r"another run .*train its network anew"):
        fit(SNN(_digits_net(3)), xtr[:160], ytr[:160], checkpoint=ck, **{**kw, "epochs": 4})
    # other data of the same size handed back this run's model as if trained on it
    with pytest.raises(snnkit.NetworkError, match=r"another run \(data: "):
        fit(SNN(_digits_net(3)), xtr[160:320], ytr[160:320], checkpoint=ck, **kw)
    # a checkpoint that would run code when unpickled is refused, and the code never runs
    torch.save({"config": _Payload(tmp_path / "pwned")}, ck)
    with pytest.raises(snnkit.NetworkError, match="checkpoint: cannot read") as e:
        fit(SNN(_digits_net(3)), xtr[:160], ytr[:160], checkpoint=ck, **kw)
    assert not (tmp_path / "pwned").exists()
    assert "not a snnkit checkpoint" in str(e.value) and "weights_only" not in str(e.value)


class _Payload:
    """Unpickled, it would create a file (the checkpoint test's stand-in for malicious code)."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


# --------------------------------------------------------------------------- bad input


def test_bad_data_and_options(digits):
    xtr, ytr, _, _ = digits
    m = SNN(_digits_net())
    with pytest.raises(snnkit.SimulationError, match=r"label 10 at index 3 is outside \[0, 10\)"):
        fit(m, xtr[:5], np.array([1, 2, 3, 10, 4]), steps=4, progress=False)
    with pytest.raises(snnkit.SimulationError, match="63 values per sample"):
        fit(m, xtr[:5, :63], ytr[:5], steps=4, progress=False)
    with pytest.raises(snnkit.SimulationError, match=r"^test y: label 11 at index 1 is outside"):
        fit(m, xtr[:5], ytr[:5], steps=4, progress=False, test=(xtr[:2], np.array([0, 11])))
    nan = xtr[:5].copy()
    nan[3, 7] = np.nan
    with pytest.raises(snnkit.SimulationError, match=r"^x: NaN or inf in sample 3"):
        fit(m, nan, ytr[:5], steps=4, progress=False)
    with pytest.raises(snnkit.SimulationError, match="one label per sample"):
        fit(m, xtr[:5], ytr[:4], steps=4, progress=False)
    with pytest.raises(snnkit.SimulationError, match="steps"):
        fit(m, xtr[:5], ytr[:5], steps=0, progress=False)
    for test in ((xtr[:2],), xtr[:2]):
        with pytest.raises(snnkit.SimulationError,
                           match=r"^test: must be a pair \(x_test, y_test\)"):
            fit(m, xtr[:5], ytr[:5], steps=4, progress=False, test=test)
    for kw, said in ((dict(lr=-1), "lr: must be a number > 0, got -1"),
                     (dict(lr=float("nan")), "lr: must be a number > 0"),
                     (dict(weight_decay=-0.1), "weight_decay: must be a number >= 0")):
        with pytest.raises(snnkit.SimulationError, match=said):
            fit(m, xtr[:5], ytr[:5], steps=4, progress=False, **kw)
    with pytest.raises(snnkit.SimulationError, match=r"needs values in \[0, 1\]"):
        fit(m, 2 * xtr[:5], ytr[:5], steps=4, progress=False)
    with pytest.raises(snnkit.SimulationError, match="last dimension is 3"):
        m(torch.zeros(4, 2, 3, dtype=torch.bool))
    with pytest.raises(snnkit.SimulationError, match="spike inputs must be 0 or 1"):
        m(torch.full((4, 2, 64), 0.5))


def test_a_data_file_without_its_arrays_is_named_once(tmp_path):
    from snnkit.training.fit import load_data

    np.savez(tmp_path / "d.npz", x=np.zeros((2, 64)), y_train=np.zeros(2))
    with pytest.raises(snnkit.SimulationError) as e:
        load_data(str(tmp_path / "d.npz"))
    assert "has no ['x_train']" in str(e.value) and "cannot read" not in str(e.value)
    (tmp_path / "t.npz").write_bytes(b"not a zip")
    with pytest.raises(snnkit.SimulationError, match="cannot read"):
        load_data(str(tmp_path / "t.npz"))


def test_non_differentiable_configurations_are_named():
    net = _digits_net()
    with pytest.raises(snnkit.NetworkError, match="nothing to train"):
        SNN(net, trainable=())
    with pytest.raises(snnkit.NetworkError, match="no population of this network has 'alpha'"):
        SNN(net, trainable=("alpha",))
    with pytest.raises(snnkit.NetworkError, match="unknown parameter"):
        SNN(net, trainable=("leak",))
    with pytest.raises(snnkit.NetworkError, match="unknown surrogate"):
        SNN(net, surrogate="step")
    m = SNN(net, trainable=("threshold",))  # thresholds of 'hid' train, 'out' is reached
    with pytest.raises(snnkit.NetworkError, match="'in' is an input population"):
        fit(m, np.zeros((2, 64)), [0, 1], steps=2, output="in", progress=False)
    net.add_population("lone", 10)  # no incoming projection, nothing trainable on it
    m = SNN(net, trainable=("weight",))
    with pytest.raises(snnkit.NetworkError, match="nothing trainable reaches population 'lone'"):
        fit(m, np.zeros((2, 64)), [0, 1], steps=2, output="lone", progress=False)
    with pytest.raises(snnkit.NetworkError, match="per_neuron=False"):
        SNN(feedforward(), trainable=("threshold",), per_neuron=False)  # b has per-neuron values
    with pytest.raises(snnkit.NetworkError, match="does not fit"):
        SNN(net, arithmetic="fixed", quantization=snnkit.Quantization(frac_bits=12))
    with pytest.raises(snnkit.NetworkError, match="arithmetic='fixed' only"):
        SNN(net, quantization=snnkit.Quantization())


def test_board_selects_the_format():
    from snnkit.compiler import HardwareConfig

    cfg = HardwareConfig(weight_bits=6, state_bits=14, frac_bits=4, decay_bits=10)
    m = SNN(_digits_net(), arithmetic="fixed", board=cfg)
    assert (m.q.weight_bits, m.q.state_bits, m.q.frac_bits, m.q.decay_bits) == (6, 14, 4, 10)
    w = m.weight(0)
    w = w.detach()
    assert float(w.abs().max()) <= 32 and torch.equal(w, w.round())  # 6-bit integers
    assert m.network().quantization == m.q


def test_kernel_library_builds():
    assert train_kernel.load() is not None


def test_gradients_reuse_memory_only_once_released():
    """The fast path hands out weight gradients in memory it takes back: never while a
    tensor or a view still uses it."""
    net = feedforward(5)
    m = SNN(net, trainable=("weight",))
    x = spikes_in(7, 3, 20, seed=5)
    fused.POOL.clear()  # only this test's gradients to take back
    loss_of(m(x)).backward()
    first = {n: p.grad for n, p in m.named_parameters()}
    keep = {n: g.clone() for n, g in first.items()}
    view = first["weights.0"][1:]
    m.zero_grad(set_to_none=True)  # first's gradients are still held: new memory
    loss_of(m(spikes_in(7, 3, 20, seed=6))).backward()
    for n, g in first.items():
        assert torch.equal(g, keep[n]), n
        assert g.data_ptr() != m.get_parameter(n).grad.data_ptr(), n
    ptrs = {g.data_ptr() for g in first.values()}
    ptrs |= {p.grad.data_ptr() for p in m.parameters()}
    del first, view, g
    m.zero_grad(set_to_none=True)
    loss_of(m(x)).backward()  # released: the memory comes back, the values are right
    for n, p in m.named_parameters():
        if n != "weights.0" and fused.POOL.use_count:  # masked: torch's product with it
            assert p.grad.data_ptr() in ptrs, n
        assert torch.equal(p.grad, keep[n]), n


def test_backward_buffers_take_the_memory_of_dropped_spikes(monkeypatch):
    """Spikes the caller dropped after the forward pass lend their memory to the backward
    pass's buffers and weight gradients (carved from it): the same gradients, bit for bit,
    as with the spikes kept (fresh buffers); kept spikes are never overwritten."""
    rng = np.random.default_rng(0)
    net = snnkit.Network()
    net.add_input("in", 50)
    net.add_population("hid", 120, snnkit.LIF(beta=0.9))
    net.add_population("out", 10, snnkit.LIF(beta=0.9))
    net.connect("in", "hid", rng.normal(0.05, 0.3, (120, 50)))
    net.connect("hid", "hid", rng.normal(0, 0.1, (120, 120)), delay=1)
    net.connect("hid", "out", rng.normal(0.1, 0.3, (10, 120)), delay=2)
    m = SNN(net, trainable=("weight",))
    x, y = spikes_in(60, 16, 50, 0.2), torch.from_numpy(rng.integers(0, 10, 16))
    carved = []
    carve = fused.POOL.carve
    monkeypatch.setattr(fused.POOL, "carve", lambda specs: (
        lambda r: carved.append(r is not None) or r)(carve(specs)))

    def grads(keep):
        m.zero_grad(set_to_none=True)
        res = m(x)
        hid = res.spikes["hid"].detach().clone()
        counts = res.spikes["out"].sum(0)
        if not keep:
            del res
        torch.nn.functional.cross_entropy(counts, y).backward()
        if keep:
            assert torch.equal(res.spikes["hid"].detach(), hid)
        return [p.grad.clone() for p in m.weights]

    fused.POOL.clear()  # no buffer of another test to carve from
    want = grads(keep=True)
    assert carved == [False]
    for _ in range(2):
        got = grads(keep=False)
        assert carved[-1]
        for a, b in zip(got, want):
            assert torch.equal(a, b)


@pytest.mark.parametrize("amx", ["1", "0"])  # the tile unit where there is one; events
@pytest.mark.parametrize("n", [10, 24, 100])  # row by row (one vector, several), transposed
def test_event_weight_gradient_equals_dense_product(n, amx, monkeypatch):
    """out (+)= x^T g over rows [r0, r1) of the target, the source lagging two rows."""
    monkeypatch.setenv("SNNKIT_TRAIN_AMX", amx)
    lib = train_kernel.load()
    runs = lib.snn_train_amx_runs()
    rng = np.random.default_rng(n)
    rows, S, lag, r0, r1 = 40, 33, 2, 5, 37
    x = torch.from_numpy(rng.random((rows, S)) < 0.3)
    offsets, idx = train_kernel.event_lists(lib, x)
    g = torch.from_numpy(rng.normal(size=(r1 - r0, n + 6)).astype(np.float32))  # padded rows
    start = torch.from_numpy(rng.normal(size=(S, n)).astype(np.float32))
    for accumulate in (False, True):
        out = start.clone()
        train_kernel.event_wgrad(lib, offsets, idx, S, r0, r1, lag, g, out, accumulate)
        src = x[r0 - lag:r1 - lag].double()  # target row r reads source row r - lag
        want = src.T @ g[:, :n].double() + (start.double() if accumulate else 0)
        assert torch.allclose(out.double(), want, rtol=1e-5, atol=1e-5), accumulate
    tiles = amx == "1" and n > train_kernel.WG_ROWS_MAX and lib.snn_train_amx_available()
    assert lib.snn_train_amx_runs() - runs == (2 if tiles else 0)


def test_tile_weight_gradient_is_float32_accurate(monkeypatch):
    """On the tile unit: gradients spanning 12 decades within a column, summed to within
    float32 rounding of the exact sums (better than the event pass's float32 running sums); a
    column with a value that is not finite is summed by events, giving the event pass's IEEE
    result. On a CPU without the tile unit, asking for it runs the event pass."""
    lib = train_kernel.load()
    rng = np.random.default_rng(5)
    rows, S, n = 300, 70, 50
    x = torch.from_numpy(rng.random((rows, S)) < 0.25)
    offsets, idx = train_kernel.event_lists(lib, x)
    g = rng.normal(size=(rows, n + 3)) * 10.0 ** rng.uniform(-12, 0, size=(rows, n + 3))
    g[:, 5], g[:, 6] = 0, g[:, 6] * 1e-30  # a zero column; one below 2^-96 (scale clamped)
    g = torch.from_numpy(g.astype(np.float32))
    tiles = bool(lib.snn_train_amx_available())
    out = {}
    for amx in ("1", "0"):
        monkeypatch.setenv("SNNKIT_TRAIN_AMX", amx if amx == "0" or tiles else "2")
        runs = lib.snn_train_amx_runs()
        out[amx] = train_kernel.event_wgrad(lib, offsets, idx, S, 0, rows, 0, g,
                                            torch.empty(S, n))
        assert lib.snn_train_amx_runs() - runs == (amx == "1" and tiles)
    if not tiles:  # asked for, the tiles fall back to the event pass
        assert torch.equal(out["1"], out["0"])
        return
    want = x.double().T @ g[:, :n].double()
    scale = g[:, :n].abs().max(0).values.double().clamp(min=1e-45)  # per column
    err_tiles = ((out["1"].double() - want).abs() / scale).max()
    err_events = ((out["0"].double() - want).abs() / scale).max()
    assert err_tiles <= err_events
    # the exact sum of the fixed point (2^-31 of the column's largest per event, 2^-127 at
    # least), rounded once
    step = (scale * 2.0 ** -31).clamp(min=2.0 ** -127)
    bound = want.abs() * 2.0 ** -24 + x.sum(0).double()[:, None] * step
    assert ((out["1"].double() - want).abs() <= bound).all()
    g[7, 3], g[9, 3], g[11, 40] = float("inf"), -float("inf"), float("nan")
    got = {}
    for amx in ("1", "0"):
        monkeypatch.setenv("SNNKIT_TRAIN_AMX", amx)
        got[amx] = train_kernel.event_wgrad(lib, offsets, idx, S, 0, rows, 0, g,
                                            out[amx].clone(), accumulate=True)
    assert torch.equal(got["1"].isinf(), got["0"].isinf())
    assert torch.equal(got["1"].isnan(), got["0"].isnan()) and got["0"].isnan().any()
    finite = got["0"].isfinite()
    assert torch.allclose(got["1"][finite], got["0"][finite], rtol=1e-5, atol=1e-6)


def test_docs_example_runs(tmp_path, monkeypatch):
    """docs/training.md's example runs as written and trains in fixed point."""
    import re
    from pathlib import Path

    monkeypatch.chdir(tmp_path)
    text = (Path(__file__).resolve().parents[1] / "docs" / "training.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    scope: dict = {}
    exec(compile(block, "training.md", "exec"), scope)
    assert scope["history"].test_accuracy[-1] >= 0.85
    assert snnkit.load("digits-trained.snn").quantization.frac_bits == 6
    assert (tmp_path / "training.png").exists() and (tmp_path / "digits.ckpt").exists()


def test_cli_train_writes_everything_or_nothing(tmp_path, capsys):
    from snnkit.cli import main

    _digits_net(hidden=32).save(tmp_path / "net.snn")
    rng = np.random.default_rng(0)
    x, y = rng.random((96, 64)), rng.integers(0, 10, 96)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y, x_test=x[:32], y_test=y[:32])
    out = tmp_path / "o" / "trained.snn"
    out.parent.mkdir()
    argv = ["train", str(tmp_path / "net.snn"), "--data", str(tmp_path / "d.npz"), "--epochs",
            "2", "--steps", "4", "--arithmetic", "fixed", "--frac-bits", "6", "-o", str(out),
            "--quiet"]
    assert main(argv) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert snnkit.load(out).quantization.frac_bits == 6
    for f in ("trained.png", "trained.snn.ckpt", "trained.snn.history.json"):
        assert (out.parent / f).stat().st_size > 0
    y[5] = 12  # a bad label: an error naming it, and nothing written
    np.savez(tmp_path / "bad.npz", x_train=x, y_train=y)
    bad = tmp_path / "bad" / "t.snn"
    bad.parent.mkdir()
    assert main(argv[:3] + [str(tmp_path / "bad.npz")] + argv[4:-2] + [str(bad), "--quiet"]) == 1
    assert "label 12 at index 5" in capsys.readouterr().err
    assert not any(bad.parent.iterdir())
