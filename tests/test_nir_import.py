"""snntorch / norse model -> their own NIR export -> snnkit.from_nir -> same spikes.

Tolerance: none. Every mapping used here is exact in real arithmetic (docs/nir.md), so the
float simulator must reproduce the library's spikes bit for bit; the only possible source of
a difference would be float32 rounding of a membrane landing within one ulp of the
threshold, which these fixed seeds do not hit. Each test also checks that both layers are
active, so an all-silent network cannot pass.
"""

import itertools
import warnings

import nir
import norse.torch as norse
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch.export_nir import export_to_nir

import snnkit
from snnkit import NetworkError
from snnkit.nir_export import to_nir
from snnkit.nir_import import from_nir
from snnkit.nir_report import NIRApproximationWarning

T, B, N_IN, N_H, N_OUT = 60, 3, 12, 10, 4


def _spikes(seed=0, p=0.3):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, N_IN, generator=g) < p).float()


def _run_torch(layers, x):
    """Step the (init_hidden) modules by hand; return the spikes of each neuron layer."""
    out = [[] for _ in layers]
    with torch.no_grad():
        for t in range(T):
            h = x[t]
            for k, (fc, nrn) in enumerate(layers):
                h = nrn(fc(h))
                h = h[0] if isinstance(h, tuple) else h
                out[k].append(h)
    return [torch.stack(o) for o in out]


def _import(graph, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = from_nir(graph, **kw)
    return net, [w for w in caught if issubclass(w.category, NIRApproximationWarning)]


def _check_same(net, ref, names):
    res = snnkit.simulate(net, _spikes().numpy(), backend="float")
    for name, want in zip(names, ref):
        got = res.spikes[name].float()
        assert 0 < want.mean() < 1, f"layer {name} is silent or saturated; test is void"
        assert torch.equal(got, want), f"{name}: {int((got != want).sum())} spikes differ"


def _snntorch_model(reset, synaptic=True, seed=0):
    torch.manual_seed(seed)
    fc1, fc2 = torch.nn.Linear(N_IN, N_H), torch.nn.Linear(N_H, N_OUT)
    with torch.no_grad():
        fc1.weight.mul_(3)
        fc2.weight.mul_(3)
    l1 = snn.Leaky(beta=torch.rand(N_H) * 0.3 + 0.6, threshold=torch.rand(N_H) * 0.5 + 0.5,
                   init_hidden=True, reset_mechanism=reset)
    if synaptic:
        l2 = snn.Synaptic(alpha=torch.rand(N_OUT) * 0.5 + 0.3, beta=torch.rand(N_OUT) * 0.3 + 0.6,
                          threshold=torch.full((N_OUT,), 0.8), init_hidden=True,
                          reset_mechanism=reset)
    else:
        l2 = snn.Leaky(beta=torch.rand(N_OUT) * 0.3 + 0.6, threshold=torch.full((N_OUT,), 0.8),
                       init_hidden=True, reset_mechanism=reset)
    layers = [(fc1, l1), (fc2, l2)]
    graph = export_to_nir(torch.nn.Sequential(fc1, l1, fc2, l2), torch.zeros(N_IN))
    return graph, layers


def test_snntorch_leaky_synaptic_default_reset_exact():
    graph, layers = _snntorch_model("subtract")
    net, warned = _import(graph, dt=1e-4, convention="snntorch")
    ref = _run_torch(layers, _spikes())
    _check_same(net, ref, ["1", "3"])
    assert net.nir_outputs == {"output": "3"}
    # the delayed reset is the neuron option, not a recurrent self projection
    assert [net.population(p).neuron.reset for p in ("1", "3")] == ["delayed", "delayed"]
    assert all(p.source != p.target for p in net.projections)
    params = {n.parameter for n in net.nir_report}
    assert {"v_reset", "bias"} <= params and warned
    # the file cannot tell subtract from zero: the report says how to read the other
    reset_note = next(n for n in net.nir_report if n.parameter == "v_reset")
    assert "'zero'" in str(reset_note) and "convention='nir'" in str(reset_note)
    # out through snnkit's export and back: the same network (its bias unit, size 1, fed by
    # nothing, was "cannot infer its size")
    assert net.population("bias_unit").size == 1
    back, _ = _import(to_nir(net), dt=net.dt)
    _check_same(back, ref, ["1", "3"])


def test_snntorch_export_imports_without_dt_at_its_exporters_step():
    """snntorch's exporter fixes dt = 1e-4: left out, that is the step (the same spikes);
    another dt would read every beta wrong, so it is refused."""
    graph, layers = _snntorch_model("subtract", seed=2)
    net, _ = _import(graph, convention="snntorch")
    assert net.dt == 1e-4
    _check_same(net, _run_torch(layers, _spikes()), ["1", "3"])
    with pytest.raises(NetworkError, match=r"dt = 0.0001; dt=0.001 would read every beta"):
        from_nir(graph, dt=1e-3, convention="snntorch")


def test_snntorch_reset_zero_matches_nir_reading():
    graph, layers = _snntorch_model("zero", synaptic=False, seed=1)
    net, _ = _import(graph, dt=1e-4)
    _check_same(net, _run_torch(layers, _spikes()), ["1", "3"])


def test_wrong_reset_convention_disagrees():
    """The same subtract-reset model read with NIR's reset-to-zero must differ (guards the test)."""
    graph, layers = _snntorch_model("subtract")
    net, _ = _import(graph, dt=1e-4, convention="nir")
    ref = _run_torch(layers, _spikes())[0]
    got = snnkit.simulate(net, _spikes().numpy()).spikes["1"].float()
    assert not torch.equal(got, ref)


def test_snntorch_rleaky_recurrent_exact():
    torch.manual_seed(2)
    fc = torch.nn.Linear(N_IN, N_H)
    with torch.no_grad():
        fc.weight.mul_(3)
    rl = snn.RLeaky(beta=0.8, threshold=1.0, linear_features=N_H, init_hidden=True)
    with torch.no_grad():
        rl.recurrent.weight.mul_(2)
    graph = export_to_nir(torch.nn.Sequential(fc, rl), torch.zeros(N_IN))
    net, _ = _import(graph, dt=1e-4, convention="snntorch")
    rec = [p for p in net.projections if p.source == p.target and p.mask is None]
    assert len(rec) == 1 and rec[0].delay == 1  # the recurrent weights, one step late
    ref = _run_torch([(fc, rl)], _spikes())
    _check_same(net, ref, [rec[0].target])


@pytest.mark.parametrize("v_leak", [0.0, 0.4])
def test_norse_lifbox_lif_exact(v_leak):
    """With v_leak != 0, norse also starts the membrane at v_leak (read as v_init; it
    started at 0: 16-19 of 600 spikes differed)."""
    torch.manual_seed(1)
    fc1, fc2 = torch.nn.Linear(N_IN, N_H), torch.nn.Linear(N_H, N_OUT)
    with torch.no_grad():
        fc1.weight.mul_(30)
        fc2.weight.mul_(30)
    c1 = norse.LIFBoxCell(norse.LIFBoxParameters(
        tau_mem_inv=torch.full((N_H,), 100.0), v_th=torch.rand(N_H) * 0.5 + 0.5,
        v_leak=torch.full((N_H,), v_leak)))
    c2 = norse.LIFCell(norse.LIFParameters(
        tau_syn_inv=torch.full((N_OUT,), 200.0), tau_mem_inv=torch.full((N_OUT,), 100.0),
        v_th=torch.ones(N_OUT), v_leak=torch.full((N_OUT,), v_leak)))
    graph = norse.to_nir(norse.SequentialState(fc1, c1, fc2, c2), torch.zeros(1, N_IN), dt=1e-3)
    x, ref, states = _spikes(), [[], []], [None, None]
    with torch.no_grad():
        for t in range(T):
            h = x[t]
            for k, (fc, c) in enumerate([(fc1, c1), (fc2, c2)]):
                h, states[k] = c(fc(h), states[k])
                ref[k].append(h)
    net, warned = _import(graph, dt=1e-3, convention="norse")
    _check_same(net, [torch.stack(r) for r in ref], ["1", "3"])
    assert any(n.parameter == "r" for n in net.nir_report) and warned
    assert any(n.parameter == "v_init" for n in net.nir_report) == (v_leak != 0)


@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_snntorch_leaky_at_beta_0_and_1_imports_exact(beta):
    """snntorch writes beta = 0 as tau = float32(1e-4), a hair below its dt ("dt exceeds
    the time constant"), and beta = 1 as tau = r = inf ("must be finite"): both refused."""
    torch.manual_seed(2)
    fc = torch.nn.Linear(N_IN, N_H)
    with torch.no_grad():
        fc.weight.mul_(2)
    lif = snn.Leaky(beta=torch.full((N_H,), beta), threshold=torch.full((N_H,), 1.0),
                    init_hidden=True)
    graph = export_to_nir(torch.nn.Sequential(fc, lif), torch.zeros(N_IN))
    net, _ = _import(graph, convention="snntorch")
    assert np.all(net.population("1").neuron.beta == beta)
    _check_same(net, _run_torch([(fc, lif)], _spikes()), ["1"])


# --------------------------------------------------------------------------- graph forms


def _lif(n, **kw):
    p = {"tau": np.full(n, 1e-2), "r": np.ones(n), "v_leak": np.zeros(n), "v_threshold": np.ones(n)}
    p.update(kw)
    return nir.LIF(**p)


def test_conv_pool_flatten_match_norse():
    """Conv2d -> IF -> SumPool2d -> IF -> Flatten -> Affine -> LIF, against norse.from_nir."""
    rng = np.random.default_rng(3)
    w = rng.normal(0, 1.0, (2, 1, 3, 3)).astype(np.float32)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 6, 6])}),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=w, stride=1, padding=0, dilation=1,
                           groups=1, bias=np.array([0.1, -0.1], np.float32)),
        "if1": nir.IF(r=np.ones((2, 4, 4)), v_threshold=np.ones((2, 4, 4))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "if2": nir.IF(r=np.ones((2, 2, 2)), v_threshold=np.ones((2, 2, 2))),
        "flat": nir.Flatten(input_type={"input": np.array([2, 2, 2])}, start_dim=0),
        "fc": nir.Affine(weight=rng.normal(4, 4, (3, 8)).astype(np.float32),
                         bias=np.zeros(3, np.float32)),
        "lif": _lif(3),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    order = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(itertools.pairwise(order)))
    net, _ = _import(graph, dt=1e-3)
    conv = next(p for p in net.projections if p.target == "if1")
    # a convolution projection: the kernel itself, shared by every position
    assert conv.conv is not None and np.array_equal(conv.weight, w)
    assert conv.conv.out_shape == (2, 4, 4) and conv.n_synapses == 32 * 9  # 3x3 taps, 1 channel
    # channel-major flattening: output (c=1, y=0, x=0) is row 16, input (0, 0, 0) column 0
    dense = conv.dense_weight()
    assert dense.shape == (32, 36) and dense[16, 0] == pytest.approx(w[1, 0, 0, 0])
    assert dense[16, 6 + 1] == pytest.approx(w[1, 0, 1, 1])
    pool = next(p for p in net.projections if p.target == "if2")  # a fixed-weight convolution
    assert pool.conv.groups == 2 and np.all(pool.weight == 1) and pool.conv.stride == (2, 2)

    ref_mod = norse.from_nir(graph, dt=1e-3)
    g = torch.Generator().manual_seed(4)
    x = (torch.rand(T, B, 1, 6, 6, generator=g) < 0.5).float()
    outs = torch.zeros(T, B, 3)
    with torch.no_grad():  # unbatched: norse hands NIR's batch-free Flatten dims to torch as is
        for b in range(B):
            state = None
            for t in range(T):
                outs[t, b], state = ref_mod(x[t, b], state)
    ref = outs
    got = snnkit.simulate(net, x.reshape(T, B, -1).numpy()).spikes["lif"].float()
    assert 0 < ref.mean() < 1
    assert torch.equal(got, ref)


def test_vleak_and_gain_reported_and_warned():
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "lin": nir.Linear(weight=np.eye(2)),
             "lif": _lif(2, v_leak=np.full(2, 0.5), r=np.full(2, 2.0)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "lin"), ("lin", "lif"), ("lif", "output")])
    with pytest.warns(NIRApproximationWarning, match="v_leak"):
        net = from_nir(graph, dt=1e-3)
    pop = net.population("lif")
    assert np.allclose(pop.neuron.beta, 0.9) and np.allclose(pop.neuron.bias, 0.1 * 0.5)
    assert np.allclose(net.projections[0].weight, 0.1 * 2.0 * np.eye(2))
    assert {n.parameter for n in net.nir_report} == {"v_leak", "r", "v_threshold"}


def test_delay_node_becomes_projection_delay():
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "lin": nir.Linear(weight=np.eye(2)),
             "d": nir.Delay(delay=np.full(2, 3e-3)),
             "lif": _lif(2),
             "output": nir.Output(output_type={"output": np.array([2])})}
    edges = [("input", "lin"), ("lin", "d"), ("d", "lif"), ("lif", "output")]
    net, _ = _import(nir.NIRGraph(nodes=nodes, edges=edges), dt=1e-3)
    assert net.projections[0].delay == 3


def test_unsupported_node_names_node_and_type():
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "readout": nir.LI(tau=np.ones(2), r=np.ones(2), v_leak=np.zeros(2)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "readout"), ("readout", "output")])
    with pytest.raises(NetworkError, match=r"'readout'.*LI"):
        from_nir(graph, dt=1e-3)


@pytest.mark.parametrize("kw, match", [
    ({"dt": 1e-3, "convention": "brian"}, "convention"),
    ({"dt": 1.0}, "exceeds the time constant .*convention='snntorch'"),
    ({"dt": -1.0}, "dt"),
    ({}, r"dt: required with convention='nir'"),
    ({"convention": "norse"}, r"dt: required with convention='norse'.*norse.torch.to_nir"),
])
def test_bad_arguments(kw, match):
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}), "lif": _lif(2)}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "lif")])
    with pytest.raises(NetworkError, match=match):
        from_nir(graph, **kw)


def test_missing_file(tmp_path):
    with pytest.raises(NetworkError, match="no such file"):
        from_nir(tmp_path / "nope.nir", dt=1e-3)
    with pytest.raises(NetworkError, match="is a folder, not a NIR file"):
        from_nir(tmp_path, dt=1e-3)


def test_a_layer_that_does_not_fit_its_neurons_is_named():
    """A Linear of 4 outputs into a LIF whose parameters give it 5 neurons: the error names
    both nodes and sizes (it was numpy's broadcast error)."""
    nodes = {"input": nir.Input(input_type={"input": np.array([6])}),
             "fc": nir.Linear(weight=np.ones((4, 6))), "lif": _lif(5)}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif")], type_check=False)
    with pytest.raises(NetworkError, match=r"NIR node 'lif' \(LIF\): has 5 neurons .* its "
                                           r"input 'fc' \(Linear\) gives 4 values"):
        from_nir(graph, dt=1e-3)


@pytest.mark.parametrize("orphan", ["fc", "bias"])
def test_a_layer_nothing_feeds_is_refused_not_dropped(orphan):
    """A Linear without an edge into it (no Input node) imported as nothing: a network
    without that layer, or with only an Affine's bias, and no word said."""
    nodes = {"input": nir.Input(input_type={"input": np.array([6])}),
             "fc": nir.Linear(weight=np.ones((4, 6))), "lif": _lif(4),
             "bias": nir.Affine(weight=np.eye(4), bias=np.ones(4))}
    edges = [("fc", "lif")] + ([("bias", "lif"), ("input", "fc")] if orphan == "bias" else [])
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    with pytest.raises(NetworkError, match=f"NIR node '{orphan}' .*nothing feeds it"):
        from_nir(graph, dt=1e-3)


def test_dict_of_norse_export_imports_and_stays_whole():
    """norse's Input carries the batch ([1, n] before a Linear [n]), which fails nir's type
    check; nir's from_dict deletes the Input's "shape" on the first try, so the retry broke."""
    fc, cell = torch.nn.Linear(N_IN, N_H), norse.LIFBoxCell()
    d = norse.to_nir(norse.SequentialState(fc, cell), torch.zeros(1, N_IN), dt=1e-3).to_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRApproximationWarning)
        net = from_nir(d, dt=1e-3, convention="norse")
    assert net.n_inputs == N_IN and "shape" in d["nodes"]["input"]


def test_a_half_written_nir_file_says_how_to_get_the_graph_in(tmp_path):
    """nir.write (nir 1.0.8) fails part way on norse's and sinabs' exports and leaves a file
    whose nodes lack their "type"; reading it said only "not a NIR file, or damaged
    (KeyError: 'type')", with no way forward. The file is made here as nir leaves it."""
    import h5py

    nodes = {"input": nir.Input(input_type={"input": np.array([2])}), "lif": _lif(2),
             "output": nir.Output(output_type={"output": np.array([2])})}
    nir.write(tmp_path / "n.nir", nir.NIRGraph(nodes=nodes, edges=[("input", "lif"),
                                                                   ("lif", "output")]))
    with h5py.File(tmp_path / "n.nir", "r+") as f:
        del f["node/nodes/output"]  # where the writer stopped
        del f["node/type"]
    with pytest.raises(NetworkError, match=r"half written .* snnkit.from_nir\(graph, \.\.\.\)"):
        from_nir(tmp_path / "n.nir", dt=1e-3)
