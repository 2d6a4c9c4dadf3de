"""The network description: building, validation messages, global indices."""

import numpy as np
import pytest
import torch

import snnkit
from snnkit import LIF, STDP, CubaLIF, NetworkError


def test_build_and_query(net):
    assert [p.name for p in net.populations] == ["in", "a", "b", "c"]
    assert net.n_inputs == 12 and net.n_neurons == 17
    assert net.offset("in") == 0 and net.offset("a") == 12 and net.offset("c") == 26
    assert net.n_synapses == int(net.projections[0].mask.sum()) + 45 + 45 + 15 + 9
    # the masked-out weights are zero, so hardware and simulators agree on them
    p = net.projections[0]
    assert np.all(p.weight[~p.mask] == 0)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda n: n.add_population("x", 0), r"populations\[1\] \(x\)\.size: must be a positive"),
        (lambda n: n.add_population("x", -3), r"size: must be a positive integer, got -3"),
        (lambda n: n.add_population("in", 3), r"a population named 'in' already exists"),
        (lambda n: n.add_population("x", 3, LIF(beta=1.5)), r"\(x\)\.neuron\.beta: must be <= 1"),
        (lambda n: n.add_population("x", 3, LIF(threshold=[1, 2])),
         r"\(x\)\.neuron\.threshold: per-neuron values must have shape \(3,\)"),
        (lambda n: n.add_population("x", 3, LIF(reset="zero")),
         r"\.reset: must be one of 'subtract', 'value', 'delayed'"),
        (lambda n: n.add_population("x", 3, LIF(reset=np.array(["value", "subtract", "value"]))),
         r"\.reset: must be one of .*one kind per population"),
        (lambda n: n.add_population("x", 3, LIF(refractory=-1)), r"\.refractory: must be an int"),
        (lambda n: n.add_population("x", 3, LIF(refractory=[1, 2])),
         r"\.refractory: must be an integer >= 0 or per-neuron integers of shape \(3,\)"),
        (lambda n: n.add_population("x", 3, LIF(refractory=[1, 2.5, 0])),
         r"\.refractory: must be an integer >= 0 or per-neuron integers"),
        (lambda n: n.add_population("x", 3, LIF(refractory=[1, -2, 0])),
         r"\.refractory: must be >= 0, got -2"),
        (lambda n: n.add_population("x", 3, LIF(bias=float("nan"))), r"\.bias: contains NaN"),
        (lambda n: n.add_population("x", 3, LIF(beta="0.9")),
         r"\.beta: expected a number or an array, got str '0\.9'"),
        (lambda n: n.connect("in", "nope", 1.0), r"\.target: no population named 'nope'"),
        (lambda n: n.connect("in", "in", 1.0), r"'in' is an input population and cannot receive"),
    ],
)
def test_bad_populations_name_the_field(build, message):
    net = snnkit.Network()
    net.add_input("in", 4)
    with pytest.raises(NetworkError, match=message):
        build(net)


def test_bad_projections_name_the_field():
    net = snnkit.Network()
    net.add_input("in", 4)
    net.add_population("h", 3)
    with pytest.raises(NetworkError, match=r"projections\[0\] \(in->h\)\.weight: shape \(4, 3\) "
                                           r"does not match \[target, source\] = \(3, 4\)"):
        net.connect("in", "h", np.zeros((4, 3)))
    with pytest.raises(NetworkError, match=r"\(in->h\)\.weight: contains NaN or inf"):
        net.connect("in", "h", np.full((3, 4), np.inf))
    with pytest.raises(NetworkError, match=r"\(h->h\)\.delay: a projection from 'h' to itself"):
        net.connect("h", "h", 0.5)
    with pytest.raises(NetworkError, match=r"\.delay: must be an integer number of steps >= 0"):
        net.connect("in", "h", 0.5, delay=-1)
    with pytest.raises(NetworkError, match=r"\.mask: shape \(2, 2\) does not match"):
        net.connect("in", "h", 0.5, mask=np.ones((2, 2)))
    with pytest.raises(NetworkError, match=r"\.mask: must hold 0/1 or True/False, got values "
                                           r"in \[0, 0\.5\]"):
        net.connect("in", "h", 0.5, mask=np.full((3, 4), 0.5) * np.eye(3, 4))
    with pytest.raises(NetworkError, match=r"\.weight: complex values"):
        net.connect("in", "h", np.ones((3, 4)) * 1j)
    with pytest.raises(NetworkError, match=r"\.weight: cannot be read as an array"):
        net.connect("in", "h", [[1, 2], [3]])
    with pytest.raises(NetworkError, match=r"\.stdp\.rule: must be 'all_pairs' or 'nearest'"):
        net.connect("in", "h", 0.5, stdp=STDP(rule="triplet"))
    with pytest.raises(NetworkError, match=r"\.stdp\.w_min: 2.0 is greater than w_max 1.0"):
        net.connect("in", "h", 0.5, stdp=STDP(w_min=2.0))
    assert net.projections == []  # nothing half-added


def test_recurrent_and_self_connections_allowed_with_delay():
    net = snnkit.Network()
    net.add_input("in", 2)
    net.add_population("h", 3, CubaLIF())
    net.connect("h", "h", np.ones((3, 3)), delay=1)
    assert net.projections[0].delay == 1 and net.n_synapses == 9


def test_quantization_validation():
    with pytest.raises(NetworkError, match=r"quantization\.weight_bits: must be an integer in"):
        snnkit.Network(quantization=snnkit.Quantization(weight_bits=1))
    with pytest.raises(NetworkError, match=r"weight_bits: 12 exceeds state_bits 8"):
        snnkit.Network(quantization=snnkit.Quantization(weight_bits=12, state_bits=8))


def test_a_threshold_at_or_below_zero_is_warned_of():
    """Legal (the RTL's always-spiking stress networks use it), but a neuron at rest then
    spikes on every step: said, naming the population."""
    net = snnkit.Network()
    net.add_input("in", 3)
    for name, thr, says in (("z", 0, r"\(z\)\.neuron\.threshold: 0 <= 0, so a neuron at rest"),
                            ("n", [1.0, -0.5, 1.0], r"\(n\)\.neuron\.threshold: -0\.5 <= 0")):
        with pytest.warns(snnkit.ThresholdWarning, match=says):
            net.add_population(name, 3, snnkit.IF(threshold=thr))
    res = snnkit.simulate(net, torch.zeros(3, 1, 3, dtype=torch.bool))
    assert res.spikes["z"].all() and res.spikes["n"][:, 0, 1].all()


def test_a_threshold_that_rounds_to_zero_is_warned_of():
    """At 6 fractional bits a threshold of 0.001 is 0 LSB: the fixed point simulator spikes
    every neuron on every step, without input; it did so without a word."""
    net = snnkit.Network(quantization=snnkit.Quantization(frac_bits=6))
    net.add_input("x", 2)
    net.add_population("a", 2, LIF(threshold=[1.0, 0.001]))
    net.connect("x", "a", 0.5)
    x = torch.zeros(5, 1, 2, dtype=torch.bool)
    with pytest.warns(snnkit.ThresholdWarning, match=r"\(a\)\.neuron\.threshold: 0\.001 rounds "
                                                   r"to 0 LSB at 6 fractional bits"):
        res = snnkit.simulate(net, x, backend="fixed")
    assert res.spikes["a"][:, 0].tolist() == [[False, True]] * 5
    net.quantization = snnkit.Quantization(frac_bits=12, state_bits=24, weight_bits=16)
    assert not snnkit.simulate(net, x, backend="fixed").spikes["a"].any()


def test_summary_lists_every_population_and_projection(net):
    text = net.summary()
    for name in ("in", "a", "b", "c", "in->a", "a->b", "b->a", "c->c"):
        assert name in text
    assert f"{net.n_synapses} synapses" in text
    assert "bits" in text


def test_summary_prints_no_negative_zero():
    """Lateral inhibition ``-0.1 * (1 - I)`` has a largest weight of -0.0 (it printed '-0')."""
    net = snnkit.Network()
    net.add_input("in", 3)
    net.add_population("a", 3, snnkit.LIF(beta=0.9))
    net.connect("in", "a", np.eye(3))
    net.connect("a", "a", -0.1 * (1 - np.eye(3)), delay=1)
    assert "w in [-0.1, 0]" in net.summary() and "-0]" not in net.summary()
