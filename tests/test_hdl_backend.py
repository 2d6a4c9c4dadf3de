"""Bit-exactness of the Verilog core against the fixed-point simulator (the contract), through
snnkit.simulate(backend="verilator" | "icarus"): spikes, v, i, theta after every step and,
with STDP, the weights after every step. One build per simulator per session (tests share
tests/test_hdl_nets.CONFIG)."""

import dataclasses

import numpy as np
import pytest
import torch

import snnkit
from snnkit.compiler import HardwareConfig, estimate_cycles
from snnkit.lowering import lower
from snnkit.rtl_backend import run_rtl
from tests.test_hdl_nets import (
    CONFIG,
    LSB,
    S_HI,
    W_HI,
    W_LO,
    Q,
    always_spiking_net,
    always_spiking_split_net,
    per_neuron_net,
    random_inputs,
    random_net,
    saturating_net,
    silent_net,
)

RECORD = ("v", "i", "theta", "weights")


@pytest.fixture(scope="session")
def rtl_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("rtl-cache")


def run_both(net, x, backend, cache, record=RECORD, **kw):
    ref = snnkit.simulate(net, x, backend="fixed", record=record, **kw)
    got = snnkit.simulate(net, x, backend=backend, record=record, config=CONFIG,
                          cache_dir=cache, **kw)
    return ref, got


def assert_same(ref, got):
    assert got.lsb == ref.lsb and got.steps == ref.steps and got.batch == ref.batch
    assert list(got.spikes) == list(ref.spikes)
    for name, s in ref.spikes.items():
        assert got.spikes[name].dtype == torch.bool
        assert torch.equal(got.spikes[name], s), f"spikes of {name} differ"
    assert set(got.states) == set(ref.states)
    for pop, d in ref.states.items():
        for var, v in d.items():
            assert torch.equal(got.states[pop][var], v.to(torch.int64)), f"{pop}.{var} differs"
    assert set(got.weights) == set(ref.weights)
    for name, w in ref.weights.items():
        assert torch.equal(got.weights[name], w), f"final weights of {name} differ"
    for name, w in ref.weight_trace.items():
        assert torch.equal(got.weight_trace[name], w), f"weights of {name} differ on some step"


@pytest.mark.parametrize("seed", range(14))
def test_random_nets_bit_exact_verilator(seed, rtl_cache):
    net = random_net(seed, stdp=False)
    assert_same(*run_both(net, random_inputs(net, 16, 2, seed), "verilator", rtl_cache))


def delayed_reset_net():
    """CubaLIF "a" (c1 and c2 nonzero) and LIF "b" (c1; thresholds differ: two runs), both
    with snntorch's delayed reset, and a recurrent delay-1 projection b -> a."""
    rng = np.random.default_rng(17)
    net = snnkit.Network(quantization=Q)
    net.add_input("in", 6)
    net.add_population("a", 7, snnkit.CubaLIF(alpha=0.75, beta=0.875, threshold=40 * LSB,
                                              reset="delayed", bias=2 * LSB))
    net.add_population("b", 5, snnkit.LIF(beta=0.8, threshold=np.array([30, 30, 30, 36, 36])
                                          * LSB, reset="delayed", refractory=1))
    net.connect("in", "a", rng.integers(-10, 40, (7, 6)) * LSB)
    net.connect("a", "b", rng.integers(-10, 50, (5, 7)) * LSB)
    net.connect("b", "a", rng.integers(-20, 10, (7, 5)) * LSB, delay=1)
    return net


def test_delayed_reset_lowered_to_self_synapses_bit_exact_verilator(rtl_cache):
    """snntorch's delayed reset runs on the core as self-synapses (snnkit/lowering.py, two
    for CubaLIF; "b", whose thresholds differ, split into runs first, each with its own
    self-synapses): the same spikes, v, i and theta as the fixed-point simulator."""
    net = delayed_reset_net()
    low = lower(net)
    assert low.runs["b"] == [(0, 3), (3, 5)] and len(low.resets["b"]) == 2
    ref, got = run_both(net, random_inputs(net, 24, 2, 17, rate=0.5), "verilator", rtl_cache)
    assert ref.spikes["a"].any() and ref.spikes["b"].any()
    assert_same(ref, got)


NATIVE = dataclasses.replace(CONFIG, delayed_reset=True)


@pytest.mark.parametrize("backend", ["verilator", "icarus"])
def test_delayed_reset_native_bit_exact(backend, rtl_cache):
    """On a core with the delayed_reset feature the delayed reset runs from the population
    fields C1, C2 (no self-projections: the weight image holds only the network's three
    projections): the same spikes, v, i and theta as the fixed-point simulator, CubaLIF
    (c2 != 0) and LIF."""
    net = delayed_reset_net()
    low = lower(net, native_reset=True)
    assert not low.resets and low.native == {"a": 2, "b": 1}
    assert len(low.net.projections) == 5  # a -> b, b -> a cut by b's two runs; no self-projection
    x = random_inputs(net, 24, 2, 17, rate=0.5)
    ref = snnkit.simulate(net, x, backend="fixed", record=RECORD)
    got = snnkit.simulate(net, x, backend=backend, record=RECORD, config=NATIVE,
                          cache_dir=rtl_cache)
    assert ref.spikes["a"].any() and ref.spikes["b"].any()
    # a neuron spiking two steps in a row makes both c1 and c2 of "a" land in one sum
    assert (ref.spikes["a"][1:] & ref.spikes["a"][:-1]).any()
    assert_same(ref, got)


def test_delayed_reset_native_cycles_match_the_estimate(rtl_cache):
    """With delayed_reset the core's CYCLES counter over one steady step is the compiler's
    estimate (three more table reads per population, nothing per neuron), and fewer
    cycles than the lowered form's (its self-projections' events and list entries)."""
    net = always_spiking_delayed_net()
    act = {"in": 1.0, "a": 1.0}
    runs = [run_rtl(net, random_inputs(net, n, 1, 0, rate=1.0), n, "verilator",
                    config=NATIVE, cache_dir=rtl_cache) for n in (6, 7)]
    measured = runs[1].cycles - runs[0].cycles
    assert measured == estimate_cycles(net, act, delayed_reset=True)
    assert measured < estimate_cycles(net, act)


def always_spiking_delayed_net():
    net = snnkit.Network(quantization=Q)
    net.add_input("in", 4)
    net.add_population("a", 6, snnkit.LIF(beta=0.75, threshold=8 * LSB, reset="delayed"))
    net.connect("in", "a", np.full((6, 4), 20 * LSB))
    return net


@pytest.mark.parametrize("seed", range(100, 114))
def test_random_nets_with_stdp_bit_exact_verilator(seed, rtl_cache):
    net = random_net(seed, stdp=True)
    assert_same(*run_both(net, random_inputs(net, 14, 2, seed), "verilator", rtl_cache))


@pytest.mark.parametrize("seed", [0, 1, 100, 101])
def test_random_nets_bit_exact_icarus(seed, rtl_cache):
    net = random_net(seed, stdp=seed >= 100)
    assert_same(*run_both(net, random_inputs(net, 10, 1, seed), "icarus", rtl_cache))


@pytest.mark.parametrize("backend", ["verilator", "icarus"])
@pytest.mark.parametrize("make", [saturating_net, always_spiking_net, silent_net])
def test_adversarial_nets_bit_exact(make, backend, rtl_cache):
    net = make()
    assert_same(*run_both(net, random_inputs(net, 12, 1, 7, rate=0.9), backend, rtl_cache))


@pytest.mark.parametrize("backend", ["verilator", "icarus"])
@pytest.mark.parametrize("seed", [0, 1])
def test_per_neuron_parameters_bit_exact(seed, backend, rtl_cache):
    """A different bias for every neuron (the core's bias memory) and per-neuron thresholds,
    decays, v_init, v_reset and adaptation (populations split into runs of equal parameters,
    snnkit.lowering), STDP on split projections: spikes, states and weights as the fixed-point
    simulator's."""
    net = per_neuron_net(seed, stdp=seed == 1)
    assert lower(net).split and len({float(b) for b in net.populations[1].neuron.bias}) > 3
    ref, got = run_both(net, random_inputs(net, 20, 2, seed), backend, rtl_cache)
    assert_same(ref, got)
    assert bool(ref.weights) == (seed == 1)


def test_learning_override_and_batch_reset(rtl_cache):
    """learning=False freezes the weights; each batch sample starts from the initial ones."""
    net = random_net(105, stdp=True)
    x = random_inputs(net, 12, 3, 105)
    for learning in (False, True):
        ref, got = run_both(net, x, "verilator", rtl_cache, learning=learning)
        assert_same(ref, got)
        w0 = torch.from_numpy(np.round(net.projections[0].weight / 2.0 ** -Q.frac_bits))
        frozen = all(torch.equal(got.weights[net.projections[0].name][b], w0.to(torch.int64))
                     for b in range(3))
        assert frozen != learning and bool(got.weight_trace) == learning


def test_long_run_streams_inputs_and_stalls_on_a_full_output_fifo(rtl_cache):
    """Without recorded states the backend runs every step in one RUN: 400 steps of inputs
    (more words than the input FIFO holds) and 4400 output spikes (more than the output FIFO
    holds, so the core must stall rather than drop)."""
    net = always_spiking_net()
    x = random_inputs(net, 400, 1, 3, rate=0.5)
    ref, got = run_both(net, x, "verilator", rtl_cache, record=())
    assert int(got.spikes["a"].sum() + got.spikes["b"].sum()) == 400 * 11
    assert_same(ref, got)


def test_quantization_of_a_float_net_matches(rtl_cache):
    """A network without a format is quantised the same way by both backends."""
    rng = np.random.default_rng(5)
    net = snnkit.Network()
    net.add_input("in", 5)
    net.add_population("h", 6, snnkit.CubaLIF(alpha=0.6, beta=0.85, threshold=0.8))
    net.connect("in", "h", rng.normal(0.4, 0.5, (6, 5)))
    x = random_inputs(net, 15, 2, 5)
    ref = snnkit.simulate(net, x, backend="fixed", record=("v",))
    cfg = HardwareConfig.for_network(snnkit.quantize(net)[0])
    got = snnkit.simulate(net, x, backend="icarus", record=("v",), config=cfg,
                          cache_dir=rtl_cache)
    assert_same(ref, got)


def test_bad_options_and_networks_raise(rtl_cache):
    net = random_net(0, stdp=False)
    x = random_inputs(net, 4, 1, 0)
    with pytest.raises(snnkit.SimulationError, match="unexpected options.*'speed'"):
        snnkit.simulate(net, x, backend="icarus", speed=2)
    small = HardwareConfig(n_max=8, **{k: getattr(Q, k) for k in (
        "weight_bits", "state_bits", "decay_bits", "trace_bits", "frac_bits",
        "trace_frac_bits", "stdp_frac_bits")})
    with pytest.raises(snnkit.NetworkError, match=r"neurons .* needed, 8 available"):
        snnkit.simulate(net, x, backend="icarus", config=small, cache_dir=rtl_cache)
    with pytest.raises(snnkit.SimulationError, match="spike inputs must be 0 or 1"):
        snnkit.simulate(net, x.to(torch.int64) * 2, backend="icarus", config=CONFIG,
                        cache_dir=rtl_cache)
    # float-only options were ignored; a dict for config met a bare AttributeError
    for bad, says in (({"precision": "bf16"}, "precision: only the float backend"),
                      ({"device": "cuda:7"}, "device: only the float and fixed backends"),
                      ({"config": {"n_max": 64}}, "config: must be a snnkit.compiler."
                                                  "HardwareConfig, got dict"),
                      ({"config": {"n_max": 64}, "cores": 2}, "config: must be")):
        with pytest.raises(snnkit.SimulationError, match=says):
            snnkit.simulate(net, x, backend="verilator", **bad)


def test_a_missing_vvp_is_named(monkeypatch, tmp_path):
    """Only iverilog was looked up: without vvp the run ended in "No such file 'vvp'"."""
    from pathlib import Path

    from snnkit.rtl_backend import sim_command

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(snnkit.SimulationError, match=r"vvp not found \(apt-get install "
                                                     r"iverilog\)"):
        sim_command("icarus", Path("tb_snn.vvp"), [])
    assert sim_command("verilator", Path("Vtb_snn"), ["+a"]) == ["Vtb_snn", "+a"]


def always_spiking_stdp_net():
    """always_spiking_net with STDP on a -> b (the dense synapse pass is counted too)."""
    net = always_spiking_net()
    net.projections[1].stdp = snnkit.STDP(a_plus=0.01, a_minus=0.012)
    return net


def half_spiking_stdp_net():
    """Half of 'a' spikes on every step (the other half gets no input), 'b' never does, STDP
    on a -> b: the event-driven STDP pass (rows of the arriving sources) is counted."""
    net = snnkit.Network(quantization=Q)
    net.add_input("in", 4)
    net.add_population("a", 6, snnkit.LIF(beta=0.5, threshold=LSB))
    net.add_population("b", 5, snnkit.LIF(beta=0.9, threshold=S_HI * LSB))
    w = np.zeros((6, 4))
    w[:3] = W_HI * LSB
    net.connect("in", "a", w)
    net.connect("a", "b", W_LO * LSB, stdp=snnkit.STDP(a_plus=0.01, a_minus=0.012))
    return net


@pytest.mark.parametrize("seed", [41, 43, 46, 51, 55])  # nets whose weights move
def test_event_driven_stdp_bit_exact(seed, rtl_cache):
    """At low activity the STDP pass walks only the rows of arriving sources and the columns
    of spiking targets (after the first, dense, step): weights equal the fixed point's after
    every step."""
    net = random_net(seed, stdp=True)
    x = random_inputs(net, 20, 2, seed - 40, rate=0.15)
    ref, got = run_both(net, x, "verilator", rtl_cache)
    assert_same(ref, got)
    assert any(not torch.equal(w[0], w[-1]) for w in ref.weight_trace.values())


def test_half_spiking_stdp_net_bit_exact(rtl_cache):
    net = half_spiking_stdp_net()
    assert_same(*run_both(net, random_inputs(net, 12, 1, 0, rate=1.0), "verilator", rtl_cache))


@pytest.mark.parametrize(("make", "activity"), [
    (always_spiking_net, {"in": 1.0, "a": 1.0, "b": 1.0}),
    (always_spiking_stdp_net, {"in": 1.0, "a": 1.0, "b": 1.0}),
    (always_spiking_split_net, {"in": 1.0, "a": 1.0, "b": 1.0}),
    (half_spiking_stdp_net, {"in": 1.0, "a": 0.5, "b": 0.0}),
    (silent_net, {"in": 1.0}),
    (silent_net, {}),
])
def test_cycle_counter_matches_the_compiler_estimate(make, activity, rtl_cache):
    """The core's CYCLES counter over one steady-state step is the compiler's estimate."""
    net = make()
    rate = activity.get("in", 0.0)
    runs = [run_rtl(net, random_inputs(net, n, 1, 0, rate=rate), n, "verilator",
                    config=CONFIG, cache_dir=rtl_cache) for n in (6, 7)]
    measured = runs[1].cycles - runs[0].cycles
    assert measured == estimate_cycles(net, activity)
    assert runs[1].syn_events - runs[0].syn_events == sum(
        round(activity.get(p.source, 0.0) * net.population(p.source).size)
        * net.population(p.target).size for p in net.projections)


@pytest.mark.parametrize("seed", [102, 106])
def test_other_bit_widths_bit_exact_icarus(seed, rtl_cache):
    """Every width is a parameter: a second build with wider weights, states, decays and
    traces (and other fraction bits) is as exact as the default one."""
    wide = snnkit.Quantization(weight_bits=10, state_bits=19, frac_bits=7, decay_bits=14,
                               trace_bits=10, trace_frac_bits=7, stdp_frac_bits=6)
    net = random_net(seed, stdp=True)
    net.quantization = wide
    cfg = HardwareConfig.for_network(net)
    assert (cfg.state_bits, cfg.decay_bits, cfg.trace_bits) == (19, 14, 10)
    x = random_inputs(net, 10, 1, seed)
    ref = snnkit.simulate(net, x, backend="fixed", record=RECORD)
    got = snnkit.simulate(net, x, backend="icarus", record=RECORD, config=cfg,
                          cache_dir=rtl_cache)
    assert_same(ref, got)
    assert ref.weights  # plastic projections were compared


def test_conv_projections_expanded_on_the_core_bit_exact(rtl_cache):
    """Convolution projections (strided, padded, a delayed recurrent one) reach the core as
    the compiler's dense expansion and run bit for bit as the fixed-point simulator's
    convolutions."""
    rng = np.random.default_rng(7)
    net = snnkit.Network(quantization=Q)
    net.add_input("in", (1, 4, 4))
    net.add_population("c1", (2, 4, 4), snnkit.LIF(beta=0.8, threshold=1.0))
    net.add_population("c2", (3, 2, 2), snnkit.IF(threshold=0.75))
    net.connect_conv("in", "c1", np.round(rng.normal(0.4, 0.5, (2, 1, 3, 3)) / LSB) * LSB,
                     padding=1)
    net.connect_conv("c1", "c2", np.round(rng.normal(0.3, 0.4, (3, 2, 2, 2)) / LSB) * LSB,
                     stride=2)
    net.connect_conv("c1", "c1", np.round(rng.normal(-0.1, 0.2, (2, 2, 3, 3)) / LSB) * LSB,
                     padding=1, delay=2)
    ref, got = run_both(net, random_inputs(net, 16, 2, 7), "verilator", rtl_cache)
    assert 0 < ref.spikes["c2"].float().mean() < 1
    assert_same(ref, got)
