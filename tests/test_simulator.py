"""Float and fixed-point simulators: closed-form cases, delays, equivalences, bad input."""

import math

import numpy as np
import pytest
import torch

import snnkit
from snnkit import IF, LIF, CubaLIF, SimulationError

from .conftest import make_net


def one_neuron(neuron, n_in=1, weight=1.0, delay=0, quant=None):
    net = snnkit.Network(quantization=quant)
    net.add_input("in", n_in)
    net.add_population("n", 1, neuron)
    net.connect("in", "n", weight, delay=delay)
    return net


def silent(steps, n=1, batch=1):
    return torch.zeros(steps, batch, n, dtype=torch.bool)


# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("backend", ["float", "fixed"])
def test_if_time_to_first_spike_under_constant_current(backend):
    # IF with bias b: v_t = (t+1) b, first spike when (t+1) b >= thr.
    b, thr = 0.125, 1.0  # exact in binary, so fixed point has no error either
    net = one_neuron(IF(threshold=thr, bias=b, reset="value"))
    res = snnkit.simulate(net, silent(40), backend=backend)
    spikes = np.nonzero(res.spikes["n"][:, 0, 0].numpy())[0]
    period = math.ceil(thr / b)
    assert list(spikes) == [period - 1 + k * period for k in range(40 // period)]


def test_lif_time_to_first_spike_matches_closed_form():
    beta, b, thr = 0.9, 0.15, 1.0
    net = one_neuron(LIF(beta=beta, threshold=thr, bias=b))
    res = snnkit.simulate(net, silent(60))
    # v_t = b (1 - beta^(t+1)) / (1 - beta) >= thr
    t_first = math.ceil(math.log(1 - thr * (1 - beta) / b) / math.log(beta)) - 1
    assert int(res.first_spike("n")[0, 0]) == t_first


def test_cuba_decay_curves_follow_alpha_and_beta():
    alpha, beta, w = 0.8, 0.9, 0.5
    net = one_neuron(CubaLIF(alpha=alpha, beta=beta, threshold=100.0), weight=w)
    x = silent(30)
    x[0, 0, 0] = True
    res = snnkit.simulate(net, x, record=("v", "i"))
    i = res.states["n"]["i"][:, 0, 0].double().numpy()
    v = res.states["n"]["v"][:, 0, 0].double().numpy()
    t = np.arange(30)
    np.testing.assert_allclose(i, w * alpha**t, rtol=1e-5)
    # v_t = sum_{k<=t} beta^(t-k) i_k = w (beta^(t+1) - alpha^(t+1)) / (beta - alpha)
    np.testing.assert_allclose(v, w * (beta ** (t + 1) - alpha ** (t + 1)) / (beta - alpha),
                               rtol=1e-5)


@pytest.mark.parametrize("backend", ["float", "fixed"])
@pytest.mark.parametrize("refractory", [0, 1, 3])
def test_refractory_period_length(backend, refractory):
    # a strong bias makes the neuron fire whenever it is allowed to integrate
    net = one_neuron(IF(threshold=1.0, bias=2.0, reset="value", refractory=refractory))
    res = snnkit.simulate(net, silent(30), backend=backend)
    spikes = np.nonzero(res.spikes["n"][:, 0, 0].numpy())[0]
    assert np.all(np.diff(spikes) == refractory + 1)
    assert spikes[0] == 0


@pytest.mark.parametrize("backend", ["float", "fixed"])
def test_reset_modes(backend):
    x = silent(3)
    x[0] = True
    sub = snnkit.simulate(one_neuron(IF(threshold=1.0), weight=1.75), x, backend=backend,
                          record=("v",))
    val = snnkit.simulate(one_neuron(IF(threshold=1.0, reset="value", v_reset=-0.5),
                                     weight=1.75), x, backend=backend, record=("v",))
    scale = sub.lsb or 1.0
    assert float(sub.states["n"]["v"][0, 0, 0]) * scale == pytest.approx(0.75, abs=1 / 64)
    assert float(val.states["n"]["v"][0, 0, 0]) * scale == pytest.approx(-0.5, abs=1 / 64)


@pytest.mark.parametrize("backend", ["float", "fixed"])
def test_adaptive_threshold_raises_and_decays(backend):
    net = one_neuron(IF(threshold=1.0, bias=0.5, reset="value", adapt_plus=0.5, adapt_decay=0.5))
    res = snnkit.simulate(net, silent(20), backend=backend, record=("theta",))
    theta = res.states["n"]["theta"][:, 0, 0].double() * (res.lsb or 1.0)
    spikes = res.spikes["n"][:, 0, 0]
    assert theta[int(np.nonzero(spikes.numpy())[0][0])] == pytest.approx(0.5)
    # after a spike, the next step's theta is half (decay 0.5) unless it spiked again
    t0 = int(np.nonzero(spikes.numpy())[0][0])
    assert theta[t0 + 1] == pytest.approx(0.25, abs=1 / 64)
    # adaptation slows firing compared with the same neuron without it
    plain = snnkit.simulate(one_neuron(IF(threshold=1.0, bias=0.5, reset="value")), silent(20),
                            backend=backend)
    assert spikes.sum() < plain.spikes["n"].sum()


# --------------------------------------------------------------------------- delays


@pytest.mark.parametrize("backend", ["float", "fixed"])
@pytest.mark.parametrize("delay", [0, 1, 2, 5])
def test_delay_shifts_spikes_by_exactly_d_steps(backend, delay):
    net = one_neuron(IF(threshold=1.0, reset="value"), n_in=1, weight=1.0, delay=delay)
    x = snnkit.encoders.poisson(np.full((3, 1), 0.3), 40, seed=3)
    res = snnkit.simulate(net, x, backend=backend)
    expected = torch.zeros_like(x)
    expected[delay:] = x[: 40 - delay]
    assert torch.equal(res.spikes["n"], expected)


def test_delay_zero_chain_crosses_all_layers_in_one_step():
    net = snnkit.Network()
    net.add_input("in", 1)
    prev = "in"
    for k in range(4):
        net.add_population(f"l{k}", 1, IF(threshold=1.0, reset="value"))
        net.connect(prev, f"l{k}", 1.0)
        prev = f"l{k}"
    x = silent(5)
    x[2] = True
    res = snnkit.simulate(net, x)
    for k in range(4):
        assert res.spikes[f"l{k}"][:, 0, 0].nonzero().flatten().tolist() == [2]


# --------------------------------------------------------------------------- equivalences


def test_layerwise_equals_stepwise_bit_for_bit_in_fixed_point():
    from snnkit import simulator as sim
    from snnkit.inputs import check_inputs
    from snnkit.plan import fixed_plan

    net = snnkit.Network()
    net.add_input("in", 30)
    net.add_population("a", 20, CubaLIF(alpha=0.5, beta=0.9))
    net.add_population("b", 10, LIF(beta=0.8, refractory=2))
    rng = np.random.default_rng(0)
    net.connect("in", "a", rng.normal(0.3, 0.5, (20, 30)))
    net.connect("a", "b", rng.normal(0.3, 0.5, (10, 20)), delay=2)
    net.connect("in", "b", rng.normal(0.0, 0.3, (10, 30)), delay=1)
    qnet, _ = snnkit.quantize(net)
    x = snnkit.encoders.poisson(rng.random((4, 30)) * 0.4, 50, seed=1)
    assert sim._layerwise_ok(qnet, fixed_plan(qnet, qnet.quantization, "cpu", None))
    fast = snnkit.simulate(qnet, x, backend="fixed", record=("v", "i"))
    arrays, steps, batch = check_inputs(qnet, x, None)
    plan = fixed_plan(qnet, qnet.quantization, "cpu", None)
    slow = sim._run_stepwise(qnet, plan, arrays, steps, batch, {"v", "i"}, "fixed", False)
    for k in fast.spikes:
        assert torch.equal(fast.spikes[k], slow.spikes[k]), k
    for k in ("a", "b"):
        for var in ("v", "i"):
            assert torch.equal(fast.states[k][var], slow.states[k][var]), (k, var)


def test_float_and_fixed_agree_within_the_quantisation_bound():
    # Thresholds out of reach: no spike, so v and i can be compared on every step. On a
    # quantised network the only difference is the rounding of each decay (<= 1/2 LSB), which
    # accumulates at most to 0.5/(1-alpha) in i and (0.5 + 0.5/(1-alpha))/(1-beta) in v.
    rng = np.random.default_rng(7)
    alpha, beta = 0.7, 0.85
    net = snnkit.Network()
    net.add_input("in", 40)
    net.add_population("h", 25, CubaLIF(alpha=alpha, beta=beta, threshold=200.0))
    net.connect("in", "h", rng.normal(0.0, 0.6, (25, 40)))
    qnet, report = snnkit.quantize(net)
    x = snnkit.encoders.poisson(rng.random((6, 40)) * 0.5, 80, seed=2)
    f = snnkit.simulate(qnet, x, record=("v", "i"))
    q = snnkit.simulate(qnet, x, backend="fixed", record=("v", "i"))
    lsb = q.lsb
    # float32 rounding adds a little on top of the integer bound
    b_i = (0.5 / (1 - alpha) + 1e-3) * lsb
    b_v = ((0.5 + 0.5 / (1 - alpha)) / (1 - beta) + 1e-2) * lsb
    di = (f.states["h"]["i"].double() - q.states["h"]["i"].double() * lsb).abs().max()
    dv = (f.states["h"]["v"].double() - q.states["h"]["v"].double() * lsb).abs().max()
    assert di <= b_i and dv <= b_v
    assert dv > 0  # the two really are different arithmetics


def test_float_and_fixed_spikes_agree_on_random_networks():
    # feed-forward: spike for spike, up to the rare threshold crossing that rounding flips
    rng = np.random.default_rng(3)
    net = snnkit.Network()
    net.add_input("in", 40)
    net.add_population("a", 30, CubaLIF(alpha=0.6, beta=0.9))
    net.add_population("b", 10, LIF(beta=0.8))
    net.connect("in", "a", rng.normal(0.2, 0.4, (30, 40)))
    net.connect("a", "b", rng.normal(0.2, 0.4, (10, 30)))
    x = snnkit.encoders.poisson(np.full((8, 40), 0.2), 60, seed=4)
    f, q = snnkit.simulate(net, x), snnkit.simulate(net, x, backend="fixed")
    for k in ("a", "b"):
        assert (f.spikes[k] == q.spikes[k]).float().mean() > 0.995
    # recurrent with adaptation is chaotic: single spikes diverge, the counts do not
    net = make_net(seed=3)
    x = snnkit.encoders.poisson(np.full((8, 12), 0.3), 60, seed=4)
    f, q = snnkit.simulate(net, x), snnkit.simulate(net, x, backend="fixed")
    for k in ("a", "b", "c"):
        nf, nq = int(f.spikes[k].sum()), int(q.spikes[k].sum())
        assert abs(nf - nq) <= 0.02 * nf, (k, nf, nq)


# --------------------------------------------------------------------------- no wrap-around


def test_saturation_never_wraps_at_the_extremes():
    q = snnkit.Quantization(weight_bits=8, state_bits=10, frac_bits=4)
    net = snnkit.Network(quantization=q)
    net.add_input("in", 64)
    net.add_population("up", 4, CubaLIF(alpha=1.0, beta=1.0, threshold=31.0))
    net.add_population("down", 4, CubaLIF(alpha=1.0, beta=1.0, threshold=31.0))
    net.connect("in", "up", 127 / 16)  # largest weight
    net.connect("in", "down", -8.0)  # most negative weight
    x = torch.ones(20, 2, 64, dtype=torch.bool)
    res = snnkit.simulate(net, x, backend="fixed", record=("v", "i"))
    hi, lo = (1 << 9) - 1, -(1 << 9)
    assert int(res.states["up"]["i"].min()) == hi  # pinned at the top from step 0
    assert int(res.states["down"]["i"].max()) == lo
    assert int(res.states["down"]["v"][-1].max()) == lo
    assert res.states["up"]["v"].min() >= 0  # never wrapped to negative


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "inputs, steps, message",
    [
        (torch.zeros(10, 2, 11), None, r"inputs: last dimension is 11 but the network has 12"),
        (torch.zeros(10, 12), None, r"inputs: expected shape \[steps, batch, 12\], got \(10, 12\)"),
        (torch.zeros(10, 2, 12), 20, r"steps: inputs cover 10 steps but steps=20"),
        (torch.zeros(10, 2, 12), 0, r"steps: must be a positive integer, got 0"),
        (torch.full((10, 2, 12), 0.5), None,
         r"spike inputs must be 0 or 1, found 0.5 at \[step, batch, input\] = \[0, 0, 0\]"),
        (np.array([["a"] * 12] * 2 * 10).reshape(10, 2, 12), None, r"expected a numeric array"),
        (torch.zeros(10, 0, 12), None, r"inputs: batch dimension is empty"),
        ({"nope": torch.zeros(10, 1, 12)}, None, r"\['nope'\] are not input populations"),
    ],
)
def test_bad_inputs_name_the_problem(inputs, steps, message):
    with pytest.raises(SimulationError, match=message):
        snnkit.simulate(make_net(), inputs, steps)


def test_bad_backend_and_record_names():
    x = torch.zeros(5, 1, 12)
    with pytest.raises(SimulationError, match=r"backend: unknown backend 'gpu'"):
        snnkit.simulate(make_net(), x, backend="gpu")
    with pytest.raises(SimulationError, match=r"record: unknown state\(s\) \['u'\]"):
        snnkit.simulate(make_net(), x, record=("u",))


def test_fixed_point_refuses_values_that_do_not_fit():
    net = one_neuron(IF(threshold=1.0), weight=3.0,
                     quant=snnkit.Quantization(weight_bits=8, frac_bits=6))
    with pytest.raises(snnkit.NetworkError, match=r"projections\[0\] \(in->n\)\.weight: value 3 "
                                                  r"\(192 LSB\) does not fit 8-bit weights"):
        snnkit.simulate(net, silent(3), backend="fixed")


# --------------------------------------------------------------------------- results, CLI


def test_result_helpers_and_npz(tmp_path, net):
    x = snnkit.encoders.poisson(np.full((3, 12), 0.3), 25, seed=0)
    res = snnkit.simulate(net, x, record=("v",))
    assert res.counts("a").shape == (3, 9)
    assert torch.equal(res.counts("a"), res.spikes["a"].sum(0))
    res.save(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as z:
        assert z["spikes/a"].shape == (25, 3, 9)
        assert np.array_equal(z["spikes/a"], res.spikes["a"].numpy())
        assert z["v/a"].shape == (25, 3, 9)


def test_cli_simulate_writes_results_and_raster(tmp_path, capsys):
    from snnkit.cli import main

    make_net().save(tmp_path / "n.snn")
    x = snnkit.encoders.poisson(np.full((2, 12), 0.3), 30, seed=0).numpy()
    np.savez(tmp_path / "in.npz", inputs=x)
    rc = main(["simulate", str(tmp_path / "n.snn"), "--input", str(tmp_path / "in.npz"),
               "--steps", "30", "--backend", "fixed", "--out", str(tmp_path / "o.npz"),
               "--plot", str(tmp_path / "r.png"), "--quiet"])
    assert rc == 0
    with np.load(tmp_path / "o.npz") as z:
        ref = snnkit.simulate(make_net(), x, backend="fixed")
        assert np.array_equal(z["spikes/b"], ref.spikes["b"].numpy())
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    rc = main(["simulate", str(tmp_path / "n.snn"), "--input", str(tmp_path / "in.npz"),
               "--steps", "31", "--out", str(tmp_path / "o.npz"), "--quiet"])
    assert rc == 2 and "--steps: 31 is more than the 30 steps the input holds" in (
        capsys.readouterr().err)


def test_encoders():
    a = snnkit.encoders.poisson(np.full((2, 1000), 0.2), 50, seed=9)
    b = snnkit.encoders.poisson(np.full((2, 1000), 0.2), 50, seed=9)
    assert torch.equal(a, b) and abs(a.float().mean().item() - 0.2) < 0.01
    r = snnkit.encoders.regular([[0.25, 1.0, 0.0]], 8)
    assert r[:, 0, 0].sum() == 2 and r[:, 0, 1].all() and not r[:, 0, 2].any()
    e = snnkit.encoders.events([(0, 0, 1), (3, 0, 2)], 5, 1, 4)
    assert e.sum() == 2 and e[3, 0, 2]
    with pytest.raises(SimulationError, match=r"rates: values must be in \[0.0, 1.0\]"):
        snnkit.encoders.poisson([[1.5]], 5)
    with pytest.raises(SimulationError, match=r"events\[0\]: \(9, 0, 0\) is outside"):
        snnkit.encoders.events([(9, 0, 0)], 5, 1, 4)
    enc = snnkit.encoders
    for call in (lambda s: enc.poisson([[0.5]], s), lambda s: enc.regular([[0.5]], s),
                 lambda s: enc.constant_current([[0.5]], s), lambda s: enc.events([], s, 1, 1)):
        for steps in (0, -1, 2.5, True):
            with pytest.raises(SimulationError, match="steps: must be a positive integer"):
                call(steps)
    with pytest.raises(SimulationError, match="batch: must be a positive integer, got 0"):
        enc.events([], 5, 0, 4)


def test_regular_trains_with_a_phase_fire_at_the_same_rate_on_other_steps():
    r = snnkit.encoders.regular([[0.25, 0.25]], 8, phase=[[0.0, 0.5]])
    assert r[:, 0, 0].nonzero().flatten().tolist() == [3, 7]
    assert r[:, 0, 1].nonzero().flatten().tolist() == [1, 5]
    with pytest.raises(SimulationError, match=r"phase: values must be in \[0, 1\)"):
        snnkit.encoders.regular([[0.25]], 8, phase=1.0)


def test_bf16_precision_is_close_to_fp32_and_only_for_float():
    rng = np.random.default_rng(0)
    net = snnkit.Network()
    net.add_input("in", 64)
    net.add_population("h", 32, LIF(beta=0.9, threshold=100.0))
    net.connect("in", "h", rng.normal(0, 0.3, (32, 64)))
    x = snnkit.encoders.poisson(np.full((4, 64), 0.2), 30, seed=0)
    a = snnkit.simulate(net, x, record=("v",))
    b = snnkit.simulate(net, x, record=("v",), precision="bf16")
    d = (a.states["h"]["v"] - b.states["h"]["v"]).abs().max()
    # bf16 keeps 8 significant bits of each weight: error <= 2^-9 relative per weight
    bound = 2**-9 * np.abs(net.projections[0].weight).sum(1).max() * 10  # <= 1/(1-beta) steps
    assert 0 < d <= bound
    with pytest.raises(SimulationError, match=r"precision: only the float backend"):
        snnkit.simulate(net, x, backend="fixed", precision="bf16")
    with pytest.raises(SimulationError, match=r"precision: must be 'fp32' or 'bf16'"):
        snnkit.simulate(net, x, precision="fp16")


# --------------------------------------------------------------------------- Simulator


@pytest.mark.parametrize("backend", ["float", "fixed"])
def test_simulator_runs_equal_simulate_and_repeat_exactly(backend):
    net = make_net(per_neuron=False)
    x = snnkit.encoders.poisson(np.full((2, 12), 0.4), 30, seed=3)
    sim = snnkit.Simulator(net, backend)
    ref = snnkit.simulate(net, x, backend=backend, record="v")
    for _ in range(2):  # a run leaves nothing behind that changes the next
        res = sim.run(x, record="v")
        assert all(torch.equal(res.spikes[k], ref.spikes[k]) for k in ref.spikes)
        assert all(torch.equal(res.states[k]["v"], ref.states[k]["v"]) for k in ref.states)


@pytest.mark.parametrize("stdp", [False, True])  # the kernel path and the step-wise one
def test_fixed_point_of_a_float_network_is_that_of_its_quantized_copy(stdp):
    """simulate(net, backend="fixed") encodes a float network directly: bit for bit what
    quantize(net) runs, weights, states and learning included."""
    net = make_net(seed=4, stdp=stdp, per_neuron=False)
    qnet, _ = snnkit.quantize(net)
    x = snnkit.encoders.poisson(np.full((3, 12), 0.4), 40, seed=5)
    a = snnkit.simulate(net, x, backend="fixed", record=("v", "i", "theta", "weights"))
    b = snnkit.simulate(qnet, x, backend="fixed", record=("v", "i", "theta", "weights"))
    assert all(torch.equal(a.spikes[k], b.spikes[k]) for k in b.spikes)
    assert all(torch.equal(a.states[k][v], b.states[k][v]) for k in b.states for v in b.states[k])
    assert a.weights.keys() == b.weights.keys() and (a.weights != {}) == stdp
    assert all(torch.equal(a.weights[k], b.weights[k]) for k in b.weights)
    assert sum(int(s.sum()) for s in b.spikes.values()) > 20


def test_simulator_is_a_snapshot_of_the_network():
    net = one_neuron(IF(threshold=1.0), weight=0.5)
    x = torch.ones(6, 1, 1, dtype=torch.bool)
    sim = snnkit.Simulator(net)
    net.projections[0].weight = np.array([[1.0]])  # edited after building: not seen
    net.add_population("late", 2, IF())  # nor is a population added afterwards
    net.connect("in", "late", 1.0)
    res = sim.run(x)
    assert res.counts("n").item() == 3 and "late" not in res.spikes
    assert snnkit.Simulator(net).run(x).counts("n").item() == 6


def test_simulator_names_bad_arguments():
    net = make_net()
    with pytest.raises(SimulationError, match=r"Simulator prepares 'float' and 'fixed' runs; "
                                              r"use simulate\(\.\.\., backend='verilator'\)"):
        snnkit.Simulator(net, "verilator")
    with pytest.raises(SimulationError, match=r"precision: only the float backend"):
        snnkit.Simulator(net, "fixed", precision="bf16")
    with pytest.raises(SimulationError, match=r"record: unknown state\(s\) \['u'\]"):
        snnkit.Simulator(net).run(torch.zeros(5, 1, 12), record="u")
    for device, said in (("tpu", "'tpu' is not a torch device"), ("mps", "runs on 'cpu' or "
                         "'cuda'"), ("cuda:99" if torch.cuda.is_available() else "cuda",
                                     "CUDA device")):
        with pytest.raises(SimulationError, match=f"^device: .*{said}"):
            snnkit.simulate(net, torch.zeros(5, 1, 12), device=device)
        with pytest.raises(SimulationError, match=f"^device: .*{said}"):
            snnkit.SNN(net, device=device)


def test_progress_bar_where_the_kernel_runs_whole_groups(capsys):
    net = one_neuron(LIF(beta=0.9), n_in=4)
    x = torch.ones(8, 2, 4, dtype=torch.bool)
    snnkit.simulate(net, x, progress=True)
    bar = capsys.readouterr().err
    assert ("group" if snnkit.kernels.load() else "step") in bar
