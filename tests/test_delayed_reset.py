"""reset="delayed", snntorch's default reset (docs/fixed-point.md): against snntorch itself, the
fixed-point spec worked by hand, and its lowering for the core (snnkit/lowering.py)."""

import numpy as np
import pytest
import snntorch as snn
import torch

import snnkit
from snnkit import IF, LIF, CubaLIF, NetworkError
from snnkit.compiler import HardwareConfig, build_images
from snnkit.lowering import lower
from snnkit.quantize import delayed_reset_weights, integer_neuron

T = 40


def one_layer(neuron, n=6, n_in=5, seed=0, q=None):
    rng = np.random.default_rng(seed)
    net = snnkit.Network(quantization=q)
    net.add_input("in", n_in)
    net.add_population("h", n, neuron)
    # dyadic weights: every float32 sum is exact, so snnkit and snntorch compute the same
    net.connect("in", "h", rng.integers(-8, 40, (n, n_in)) / 64)
    return net, torch.from_numpy(rng.random((T, 3, n_in)) < 0.4)


@pytest.mark.parametrize("synaptic", [False, True])
def test_spikes_and_membrane_are_snntorchs(synaptic):
    """Dyadic weights and decays (the sums are exact, so the spikes are bit for bit). snnkit's
    v is snntorch's mem minus the threshold on the step of a spike (subtracted at once, the
    correction c1 comes a step later), and its i is snntorch's syn plus c1 after a spike:
    equal in real arithmetic, so up to float32 rounding once the values outgrow 24 bits."""
    thr = 0.75
    nrn = (CubaLIF(alpha=0.5, beta=0.75, threshold=thr, reset="delayed") if synaptic
           else LIF(beta=0.75, threshold=thr, reset="delayed"))
    net, x = one_layer(nrn)
    res = snnkit.simulate(net, x, record=("v", "i"))
    w = torch.tensor(net.projections[0].weight, dtype=torch.float32)
    peer = (snn.Synaptic(alpha=0.5, beta=0.75, threshold=thr) if synaptic
            else snn.Leaky(beta=0.75, threshold=thr))
    state = peer.init_synaptic() if synaptic else (peer.init_leaky(),)
    spk, mem, syn = [], [], []
    with torch.no_grad():
        for t in range(T):
            s, *state = peer(x[t].float() @ w.T, *state)
            spk.append(s)
            mem.append(state[-1])
            if synaptic:
                syn.append(state[0])
    spk, mem = torch.stack(spk).bool(), torch.stack(mem)
    got = res.spikes["h"]
    assert torch.equal(got, spk) and 0 < got.float().mean() < 1
    assert torch.allclose(res.states["h"]["v"], mem - thr * spk, atol=1e-6)
    if synaptic:  # c1 = 0.75 * thr - thr; c2 = -0.5 * c1 takes back what the current kept
        prev = torch.cat([torch.zeros_like(spk[:1]), spk[:-1]])
        assert torch.allclose(res.states["h"]["i"], torch.stack(syn) + (0.75 * thr - thr) * prev,
                              atol=1e-6)


def test_fixed_point_by_hand():
    """docs/fixed-point.md: subtract at once, then c1 = decay(thr, beta) - thr joins the
    input one step later (LIF: no c2)."""
    q = snnkit.Quantization(frac_bits=6)
    net, _ = one_layer(LIF(beta=0.9, threshold=1.0, reset="delayed"), n=1, n_in=1, q=q)
    net.projections[0].weight[:] = 0.75  # 48 LSB
    x = torch.ones(12, 1, 1, dtype=torch.bool)
    res = snnkit.simulate(net, x, backend="fixed", record=("v", "i"))
    beta, thr, w, half = 3686, 64, 48, 2048  # round(0.9 * 4096), 1.0, 0.75 in LSB
    c1 = ((thr * beta + half) >> 12) - thr  # decay(64, 3686) - 64 = 58 - 64 = -6
    assert c1 == -6
    v, s, vs, ss, is_ = 0, False, [], [], []
    for _ in range(12):
        i = w + (c1 if s else 0)
        v = ((v * beta + half) >> 12) + i
        s = v >= thr
        v = v - thr if s else v
        vs.append(v)
        ss.append(s)
        is_.append(i)
    assert res.states["h"]["v"][:, 0, 0].tolist() == vs
    assert res.states["h"]["i"][:, 0, 0].tolist() == is_
    assert res.spikes["h"][:, 0, 0].tolist() == ss and sum(ss) > 3


def _nets():
    rng = np.random.default_rng(4)
    lif = LIF(beta=rng.uniform(0.7, 0.95, 6), threshold=rng.uniform(0.5, 1.0, 6),
              reset="delayed", bias=0.02)
    cuba = CubaLIF(alpha=0.6, beta=0.85, threshold=0.8, reset="delayed", refractory=1)
    return [one_layer(lif, seed=1), one_layer(cuba, seed=2), one_layer(IF(reset="delayed"))]


@pytest.mark.parametrize("k", [0, 1, 2], ids=["lif", "cuba", "if"])
def test_lowering_runs_the_same_integers(k):
    """The core's network (snnkit.lowering.lower): per-neuron beta / threshold split "h" into
    runs first (lif), then each run's delayed reset becomes diagonal self-projections of its
    own c1 (c2) values; the fixed-point simulator runs it to the same integers."""
    net, x = _nets()[k]
    qnet, _ = snnkit.quantize(net)
    low = lower(qnet)
    runs = low.runs["h"]
    assert len(runs) == (6, 1, 1)[k]
    names = [p.name for p in low.net.populations if low.origin[p.name] == "h"]
    span = dict(zip(names, runs))
    delays = ((1,), (1, 2), ())[k]
    selfs = [low.net.projections[i] for i in low.resets.get("h", [])]
    assert sorted(p.delay for p in selfs) == sorted(delays * len(runs))
    assert all(p.source == p.target for p in selfs)
    assert all(p.neuron.reset == "subtract" for p in low.net.neuron_populations)
    assert qnet.populations[1].neuron.reset == "delayed"  # the original is untouched
    c = delayed_reset_weights(integer_neuron(qnet, qnet.populations[1], qnet.quantization),
                              qnet.quantization)
    lsb = 2.0 ** -qnet.quantization.frac_bits
    for p in selfs:  # each run's diagonal: its own neurons' c1 (c2)
        lo, hi = span[p.source]
        assert np.array_equal(np.diag(p.weight), c[p.delay - 1][lo:hi] * lsb)
        assert p.mask.sum() == hi - lo
    a = snnkit.simulate(qnet, x, backend="fixed", record=("v", "i", "theta"))
    b = snnkit.simulate(low.net, x, backend="fixed", record=("v", "i", "theta"))
    assert a.spikes["h"].any()
    assert torch.equal(a.spikes["in"], b.spikes["in"])
    assert torch.equal(a.spikes["h"], torch.cat([b.spikes[n] for n in names], -1))
    for var in ("v", "i", "theta"):
        assert torch.equal(a.states["h"][var],
                           torch.cat([b.states[n][var] for n in names], -1))
    # the core is sized for what lowering adds: n * n words per self-projection of a run
    words = sum(p.weight.size for p in selfs)
    assert words == len(delays) * sum((hi - lo) ** 2 for lo, hi in runs)
    report, _ = build_images(qnet, HardwareConfig.for_network(qnet, delayed_reset=False))
    assert report.weight_words == 5 * 6 + words
    assert ("h's delayed reset as" in report.resets) == bool(delays)
    # a core with the delayed_reset feature (for_network's default here): no such words
    report, _ = build_images(qnet)
    assert report.weight_words == 5 * 6 and report.config.delayed_reset


def test_a_correction_that_does_not_fit_the_weights_is_refused():
    # threshold 4.5 and beta 0.5: c1 = -2.25, beyond 8-bit weights with 6 fractional bits
    q = snnkit.Quantization(weight_bits=8, state_bits=16, frac_bits=6)
    net, _ = one_layer(LIF(beta=0.5, threshold=4.5, reset="delayed"), q=q)
    with pytest.raises(NetworkError, match=r"\(h\)\.neuron\.reset: 'delayed' runs on the core "
                                           r"as a self-projection of weight -144 LSB"):
        build_images(net, HardwareConfig.for_network(net, delayed_reset=False))
    build_images(net, HardwareConfig.for_network(net))  # in the core: c1 is a state-width field
    net.quantization = None
    auto, _ = snnkit.quantize(net)
    assert auto.quantization.frac_bits == 5  # the automatic format leaves room for c1
    build_images(auto)


def test_the_fit_check_counts_and_names_the_self_projections():
    """30 weight words of the network plus 36 of h's self-projection do not fit 64: the
    refusal names the delayed reset's cost; sized by for_network, the core holds it."""
    net, _ = one_layer(LIF(beta=0.9, threshold=0.8, reset="delayed"))
    qnet, _ = snnkit.quantize(net)
    small = HardwareConfig.for_network(qnet, syn_max=64, delayed_reset=False)
    with pytest.raises(NetworkError, match=r"66 weight words needed \(with h's delayed reset "
                                           r"as 1 self-projection \(36 weight words"):
        build_images(qnet, small)
    report, _ = build_images(qnet, HardwareConfig.for_network(qnet, delayed_reset=False))
    assert report.weight_words == 66 and "delayed resets: h's delayed reset" in str(report)
    # with the delayed_reset feature the 64 words hold it: the network's 30 only
    report, _ = build_images(qnet, HardwareConfig.for_network(qnet, syn_max=64))
    assert report.weight_words == 30 and "in the core" in report.resets


def test_snnkit_build_sizes_the_board_for_the_self_projections(tmp_path, monkeypatch):
    """The FPGA boards' cores have no native delayed reset (build.build lowers it to
    self-projections), so `snnkit build` must size the core for those: sized natively (1,024
    weight words for 320; 1,920 with the self-projection) the compile refused the network
    after the output folder was made."""
    import snnkit.build as build_mod
    from snnkit.cli import main

    net, _ = one_layer(LIF(beta=0.9, threshold=0.8, reset="delayed"), n=40, n_in=8)
    net.save(tmp_path / "net.snn")
    reached = {}

    def stop_before_the_tools(params, out, clock, **kw):
        reached["compiled"] = (out / "compiled").is_dir()
        raise KeyboardInterrupt  # the tools' run is not this test's subject

    monkeypatch.setattr(build_mod, "build_ice40", stop_before_the_tools)
    rc = main(["build", str(tmp_path / "net.snn"), "--board", "ice40", "-o",
               str(tmp_path / "b")])
    assert rc == 130 and reached == {"compiled": True}
    report = (tmp_path / "b" / "compiled" / "report.txt").read_text()
    assert "1 self-projection" in report
