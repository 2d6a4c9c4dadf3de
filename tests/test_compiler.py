"""snnkit.compile: images laid out as docs/hardware.md says, a report, clear refusals."""

import json

import numpy as np
import pytest

import snnkit
from snnkit.cli import main
from snnkit.compiler import HardwareConfig, estimate_cycles
from snnkit.memory_map import PopField, ProjField
from snnkit.quantize import encode
from tests.test_hdl_nets import CONFIG, LSB, Q, random_net


def _words(path, bits=32):
    vals = [int(line, 16) for line in path.read_text().split()]
    return [v - (1 << bits) if v >> (bits - 1) else v for v in vals]


POP_FIELDS, PROJ_FIELDS = PopField, ProjField


def _field(words, entry, name, fields):
    """Field ``name`` of table entry ``entry`` (``fields``: PopField or ProjField)."""
    return words[16 * entry + fields[name.upper()]]


def test_writes_every_file_and_the_report(tmp_path):
    net = random_net(3, stdp=True)
    rep = snnkit.compile(net, tmp_path, CONFIG)
    for f in ("params.vh", "pop.hex", "proj.hex", "weights.hex", "bias.hex", "regs.hex",
              "report.json", "report.txt"):
        assert (tmp_path / f).exists(), f
    assert rep.n_neurons == net.n_neurons and rep.n_synapses == net.n_synapses
    assert rep.weight_words == sum(p.weight.size for p in net.projections)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["n_synapses"] == net.n_synapses and data["config_key"] == CONFIG.key()
    assert "estimated cycles per step" in (tmp_path / "report.txt").read_text()
    assert f"`define SNN_N_MAX {CONFIG.n_max}" in (tmp_path / "params.vh").read_text()
    assert rep.cycles_per_step["no spikes"] < rep.cycles_per_step["all spiking"]


def test_weight_image_follows_the_documented_layout(tmp_path):
    """Weight of source s to target t at W_BASE + s*SIZE[target] + t, plastic flag above."""
    net = random_net(101, stdp=True)
    snnkit.compile(net, tmp_path, CONFIG)
    w = [int(x, 16) for x in (tmp_path / "weights.hex").read_text().split()]
    proj = _words(tmp_path / "proj.hex")
    pops = _words(tmp_path / "pop.hex")
    names = [p.name for p in net.populations]
    seen = set()
    for k in range(len(net.projections)):
        src, tgt = (_field(proj, k, "src", PROJ_FIELDS), _field(proj, k, "tgt", PROJ_FIELDS))
        pr = next(p for p in net.projections
                  if (p.source, p.target) == (names[src], names[tgt]))
        seen.add(pr.name)
        base, size_t = _field(proj, k, "w_base", PROJ_FIELDS), net.population(pr.target).size
        assert _field(pops, tgt, "size", POP_FIELDS) == size_t
        plastic = pr.connections() if pr.plastic_mask is None else pr.connections() & \
            pr.plastic_mask
        for t in range(size_t):
            for s in range(net.population(pr.source).size):
                word = w[base + s * size_t + t]
                value = (word & 0xFF) - ((word & 0x80) << 1)
                assert value == round(pr.weight[t, s] / LSB)
                assert bool(word >> 8) == (pr.stdp is not None and bool(plastic[t, s]))
    assert seen == {p.name for p in net.projections}


def test_tables_hold_the_integer_parameters(tmp_path):
    net = snnkit.Network(quantization=Q)
    net.add_input("in", 3)
    net.add_population("a", 4, snnkit.CubaLIF(alpha=0.5, beta=0.75, threshold=1.5,
                                               reset="value", v_reset=-0.25, refractory=3,
                                               bias=0.125, v_init=0.5))
    net.connect("in", "a", 0.5, delay=2)
    snnkit.compile(net, tmp_path, CONFIG)
    pops = _words(tmp_path / "pop.hex")
    expect = {"offset": 3, "size": 4, "refractory": 3, "alpha": 2048, "beta": 3072,
              "threshold": 96, "v_reset": -16, "v_init": 32, "flags": 4,
              "proj_first": 0, "proj_count": 1}
    for name, v in expect.items():
        assert _field(pops, 1, name, POP_FIELDS) == v, name
    # the bias is per neuron, by global index (inputs 0): region BIAS's image
    assert _words(tmp_path / "bias.hex", 16) == [0, 0, 0, 8, 8, 8, 8]
    assert _field(pops, 0, "flags", POP_FIELDS) == 1  # the input population
    proj = _words(tmp_path / "proj.hex")
    assert _field(proj, 0, "delay", PROJ_FIELDS) == 2
    assert _words(tmp_path / "regs.hex")[:3] == [2, 1, 12]


def test_projections_are_grouped_by_target(tmp_path):
    net = snnkit.Network(quantization=Q)
    net.add_input("in", 2)
    net.add_population("a", 2)
    net.add_population("b", 2)
    net.connect("in", "b", 0.5)
    net.connect("in", "a", 0.5)
    net.connect("a", "b", 0.5)
    rep = snnkit.compile(net, tmp_path, CONFIG)
    pops = _words(tmp_path / "pop.hex")
    proj = _words(tmp_path / "proj.hex")
    for p in (1, 2):
        first, count = (_field(pops, p, "proj_first", POP_FIELDS),
                        _field(pops, p, "proj_count", POP_FIELDS))
        tgts = {_field(proj, k, "tgt", PROJ_FIELDS) for k in range(first, first + count)}
        assert tgts == {p} and count == len(net.incoming(net.populations[p].name))
    assert rep.proj_order == [1, 0, 2]


def test_too_big_says_what_and_by_how_much(tmp_path):
    net = random_net(1, stdp=False)
    n = net.n_inputs + net.n_neurons
    small = HardwareConfig(**{**CONFIG.__dict__, "n_max": n - 3})
    with pytest.raises(snnkit.NetworkError, match=f"{n} neurons .* {n - 3} available "
                                                  r"\(3 too many\)"):
        snnkit.compile(net, tmp_path, small)
    words = sum(p.weight.size for p in net.projections)
    with pytest.raises(snnkit.NetworkError, match=f"{words} weight words needed"):
        snnkit.compile(net, tmp_path, HardwareConfig(**{**CONFIG.__dict__, "syn_max": 4}))
    net.connect("p0", "p0", 0.1, delay=9)
    with pytest.raises(snnkit.NetworkError, match=r"9 delay \(steps\) needed, 3 available"):
        snnkit.compile(net, tmp_path, CONFIG)


def test_refuses_what_the_hardware_lacks(tmp_path):
    net = snnkit.Network(quantization=Q)
    net.add_input("x", 2, encoding="current")
    net.add_population("a", 2)
    net.connect("x", "a", 0.5)
    with pytest.raises(snnkit.NetworkError, match=r"\(x\).encoding: current inputs"):
        snnkit.compile(net, tmp_path, CONFIG)
    other = HardwareConfig(**{**CONFIG.__dict__, "state_bits": 12})
    with pytest.raises(snnkit.NetworkError, match="state_bits: the network uses 16"):
        snnkit.compile(random_net(0, False), tmp_path, other)
    net = random_net(2, stdp=False)
    net.populations[1].neuron.refractory = 300
    with pytest.raises(snnkit.NetworkError, match="refractory: 300 does not fit"):
        snnkit.compile(net, tmp_path, CONFIG)


def test_per_neuron_parameters_split_into_runs_and_biases_go_per_neuron(tmp_path):
    """Thresholds that differ make one table entry per run of equal ones (global indices
    kept); the bias is per neuron in bias.hex; the weight blocks read back as the weights."""
    net = snnkit.Network(quantization=Q)
    net.add_input("in", 3)
    th = np.array([1, 1, 2, 2, 2, 3]) * 0.5
    bias = np.arange(-3, 3) * LSB
    net.add_population("a", 6, snnkit.LIF(beta=0.5, threshold=th, bias=bias))
    rng = np.random.default_rng(0)
    net.connect("in", "a", rng.integers(-9, 9, (6, 3)) * LSB)
    net.connect("a", "a", rng.integers(-9, 9, (6, 6)) * LSB, delay=1,
                stdp=snnkit.STDP(w_min=-1, w_max=1))
    rep = snnkit.compile(net, tmp_path, CONFIG)
    assert rep.split == "a into 3 runs (per-neuron threshold)"
    assert "split for per-neuron parameters: a into 3 runs" in (tmp_path / "report.txt").read_text()
    pops = _words(tmp_path / "pop.hex")
    assert [(_field(pops, k, "offset", POP_FIELDS), _field(pops, k, "size", POP_FIELDS),
             _field(pops, k, "threshold", POP_FIELDS)) for k in (1, 2, 3)] == \
        [(3, 2, 32), (5, 3, 64), (8, 1, 96)]
    assert _words(tmp_path / "regs.hex")[:2] == [4, 3 + 9]  # in->a: 3 blocks, a->a: 9
    assert _words(tmp_path / "bias.hex", 16) == [0, 0, 0, -3, -2, -1, 0, 1, 2]
    image = [int(x, 16) for x in (tmp_path / "weights.hex").read_text().split()]
    values = [(w & 0xFF) - ((w & 0x80) << 1) for w in image]
    for i, pr in enumerate(net.projections):
        assert np.array_equal(rep.matrix(values, i), np.round(pr.weight / LSB)), pr.name
        plastic = rep.matrix([w >> 8 for w in image], i)  # the plastic flags, same layout
        assert (plastic == (pr.stdp is not None)).all(), pr.name
    assert rep.trace_words == 3 * (2 + 3 + 1) * 2  # a copy of the traces per pair of runs


def test_too_many_runs_are_refused_saying_why(tmp_path):
    net = snnkit.Network(quantization=Q)
    net.add_input("in", 2)
    net.add_population("a", 20, snnkit.LIF(threshold=np.arange(1, 21) * LSB))
    net.connect("in", "a", 0.5)
    with pytest.raises(snnkit.NetworkError, match=r"21 populations needed \(after splitting a "
                       r"into 20 runs \(per-neuron threshold\)\), 8 available \(13 too many\)"):
        snnkit.compile(net, tmp_path, CONFIG)
    assert HardwareConfig.for_network(net).p_max == 32  # a configuration sized for it


def test_default_config_fits_and_is_shared_by_similar_networks():
    a = HardwareConfig.for_network(random_net(0, False))
    b = HardwareConfig.for_network(random_net(4, False))
    assert a == b and a.key() == b.key() and a.n_max >= 64


def test_cycle_estimate_grows_with_activity():
    net = random_net(9, stdp=False)
    lo, mid, hi = (estimate_cycles(net, a) for a in (0.0, 0.5, 1.0))
    assert lo < mid < hi
    # one cycle per synaptic event, but at least 3 per neuron (its decays share a multiplier)
    per_neuron = {pop.name: sum(net.population(p.source).size for p in net.incoming(pop.name))
                  for pop in net.neuron_populations}
    assert hi - lo == sum(pop.size * (max(per_neuron[pop.name], 3) - 3)
                          for pop in net.neuron_populations) + sum(5 * p.size for p in net.inputs)
    assert sum(pop.size * per_neuron[pop.name] for pop in net.neuron_populations) == sum(
        p.weight.size for p in net.projections)
    assert estimate_cycles(net, {"in": 1.0}) > lo


def test_compile_main_cli(tmp_path, capsys):
    net = random_net(5, stdp=False)
    net.save(tmp_path / "n.snn")
    assert main(["compile", str(tmp_path / "n.snn"), "-o", str(tmp_path / "out"),
                 "--n-max", "128"]) == 0
    assert "N_MAX=128" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "report.json").read_text())["config"]["n_max"] == 128


def test_encoding_is_the_quantizer_s(tmp_path):
    """A float network is quantised once, with snnkit.quantize's format."""
    net = snnkit.Network()
    net.add_input("in", 2)
    net.add_population("a", 2, snnkit.LIF(threshold=0.7))
    net.connect("in", "a", [[0.3, -0.2], [0.11, 0.5]])
    qnet, _ = snnkit.quantize(net)
    snnkit.compile(net, tmp_path)
    pops = _words(tmp_path / "pop.hex")
    assert _field(pops, 1, "threshold", POP_FIELDS) == int(
        encode(0.7, qnet.quantization.frac_bits))


def test_snntorch_leaky_layer_of_1000_fits_with_the_native_delayed_reset(tmp_path):
    """A snntorch-default Leaky layer (reset="delayed") of 1000 neurons: for_network gives the
    core the delayed_reset feature, and the core's weight words are the network's own
    (100 x 1000); lowered to self-projections it would need 1,000,000 more."""
    from snnkit.compiler import board_config, build_images, requirements
    from snnkit.lowering import lower

    rng = np.random.default_rng(0)
    net = snnkit.Network(quantization=Q)
    net.add_input("in", 100)
    net.add_population("h", 1000, snnkit.LIF(beta=0.9, threshold=1.0, reset="delayed"))
    net.connect("in", "h", rng.integers(-20, 20, (1000, 100)) * LSB)
    c = HardwareConfig.for_network(net)
    assert c.delayed_reset and c.syn_max == 131072 and c.verilog_params()["DELAYED_RESET"] == 1
    assert requirements(net, c)["weight words"] == (100_000, 131072)
    report, images = build_images(net, c)
    assert report.weight_words == 100_000 and len(report.blocks) == 1
    assert "in the core" in report.resets
    row = [int(w, 16) for w in images["pop.hex"].split()][16:32]  # population "h"
    c1, c2 = lower(net).net.projections[1].weight[0, 0] / LSB, 0  # the lowered form's c1
    assert row[PopField.C1] == int(c1) & 0xFFFFFFFF and row[PopField.C2] == c2
    lowered = HardwareConfig.for_network(net, delayed_reset=False)
    assert not lowered.delayed_reset and "DELAYED_RESET" not in lowered.verilog_params()
    assert requirements(net, lowered)["weight words"][0] == 1_100_000
    # the FPGA boards keep the lowered form: the self-projection does not fit them
    assert not board_config(net).delayed_reset


def test_the_automatic_size_widens_the_amplitude_register_for_the_network(tmp_path):
    """With 16 fraction bits of STDP, a_plus = 0.05 is 26 bits: the fixed simulator ran it,
    the RTL backends' automatic size kept 24 bits and refused it ("more than the 24-bit
    amplitude register holds")."""
    net = snnkit.Network(dt=1e-3)
    net.add_input("in", 2)
    net.add_population("o", 2, snnkit.LIF(threshold=1.0))
    net.connect("in", "o", 0.5, stdp=snnkit.STDP(a_plus=0.05, a_minus=0.04))
    net.quantization = snnkit.Quantization(weight_bits=16, state_bits=32, frac_bits=14,
                                           stdp_frac_bits=16)
    config = HardwareConfig.for_network(net)
    assert config.a_bits == int(0.05 * 2**16 * 2**14).bit_length() == 26
    snnkit.compile(net, tmp_path / "c", config)
    with pytest.raises(snnkit.NetworkError, match=r"24-bit amplitude register holds "
                                                  r"\(a_bits=26 in the HardwareConfig"):
        snnkit.compile(net, tmp_path / "d", HardwareConfig.for_network(net, a_bits=24))
