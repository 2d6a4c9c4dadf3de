"""NIR graphs as other tools write them: convolutional networks exported by sinabs, snntorch
and norse, and rockpool's LIF layers, each imported and run spike for spike against the
peer's own run (its own semantics through ``convention=``). The convolutions stay
convolution projections (shared kernels), not dense matrices.
"""

import warnings

import numpy as np
import pytest
import torch

import snnkit
from snnkit.nir_import import from_nir

T, B = 30, 2


def _frames(shape, p=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand((T, B) + shape, generator=g) < p).float()


def _import(graph, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return from_nir(graph, **kw)


def _check(net, x, ref: dict):
    """``ref``: population -> the peer's spikes [T, B, ...]."""
    res = snnkit.simulate(net, x.reshape(T, B, -1).numpy())
    for name, want in ref.items():
        want = want.reshape(T, B, -1)
        assert 0 < want.mean() < 1, f"{name} silent or saturated: test void"
        got = res.spikes[name].float()
        assert torch.equal(got, want), f"{name}: {int((got != want).sum())} spikes differ"


def _convs(net):
    return [p for p in net.projections if p.conv is not None]


def test_sinabs_cnn_imports_and_matches():
    """The issue's failing file: Conv2d -> IF -> SumPool2d -> Conv2d -> IF -> Flatten ->
    Affine -> IF, written by sinabs.to_nir (no Conv2d input_shape)."""
    sinabs = pytest.importorskip("sinabs")
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    torch.manual_seed(0)
    iaf = dict(batch_size=B, spike_fn=SingleSpike)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), sl.IAFSqueeze(**iaf), sl.SumPool2d(2),
        torch.nn.Conv2d(4, 6, 3, padding=1), sl.IAFSqueeze(**iaf), torch.nn.Flatten(),
        torch.nn.Linear(6 * 5 * 5, 5), sl.IAFSqueeze(**iaf))
    with torch.no_grad():
        for m in (model[0], model[3], model[6]):
            m.weight.mul_(4)
    graph = sinabs.to_nir(model, torch.zeros(B, 2, 10, 10))
    net = _import(graph, dt=1e-3, convention="sinabs")
    convs = _convs(net)
    # the pool and the convolution after it are one convolution of the pooled kernel
    assert len(convs) == 2 and convs[1].conv.stride == (2, 2)
    assert convs[1].weight.shape == (6, 4, 6, 6)

    x = _frames((2, 10, 10))
    ref = {}
    hooks = [model[i].register_forward_hook(lambda m, a, o, i=i: ref.__setitem__(i, o))
             for i in (1, 4, 7)]
    sinabs.reset_states(model)  # the export ran the model once
    with torch.no_grad():  # sinabs' Squeeze layers take [batch * time, ...], batch major
        model(x.transpose(0, 1).reshape(B * T, 2, 10, 10))
    for h in hooks:
        h.remove()
    names = {1: "1", 4: "4", 7: "7"}
    _check(net, x, {names[i]: o.reshape(B, T, -1).transpose(0, 1) for i, o in ref.items()})


def test_sinabs_dense_model_imports_and_matches():
    """sinabs' plain IAF / LIF layers take [batch, time, ...]; exported with such a sample,
    sinabs.to_nir writes the sample's time steps into Input ([T, n]): read as n inputs."""
    sinabs = pytest.importorskip("sinabs")
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike

    torch.manual_seed(5)
    model = torch.nn.Sequential(
        torch.nn.Linear(10, 20), sl.IAF(spike_fn=SingleSpike, spike_threshold=1.5),
        torch.nn.Linear(20, 5), sl.LIF(tau_mem=5.0, spike_fn=SingleSpike, norm_input=False))
    with torch.no_grad():
        model[0].weight.mul_(3)
        model[2].weight.mul_(3)
    x = _frames((10,), seed=5)
    graph = sinabs.to_nir(model, x[:, :1].transpose(0, 1))  # one sample [1, T, 10]
    assert list(np.asarray(graph.nodes["input"].input_type["input"])) == [T, 10]
    net = _import(graph, convention="sinabs")
    assert net.population("input").size == 10
    # the file cannot say norm_input (True by default: other spikes): the report says so
    said = {(n.node, n.parameter): n.exact for n in net.nir_report}
    assert said[("3", "norm_input")] is False and ("1", "norm_input") not in said
    sinabs.reset_states(model)  # the export ran the model once
    ref = {}
    hooks = [model[i].register_forward_hook(lambda m, a, o, i=i: ref.__setitem__(str(i), o))
             for i in (1, 3)]
    with torch.no_grad():
        model(x.transpose(0, 1))  # sinabs: [batch, time, ...]
    for h in hooks:
        h.remove()
    _check(net, x, {k: o.transpose(0, 1) for k, o in ref.items()})


def test_snntorch_cnn_imports_and_matches():
    """snntorch's export_to_nir of a CNN: per-neuron beta and threshold shaped as the layer
    (with scalars its export stops at NIR's type check), a batched sample, ignore_dims=[0]."""
    import snntorch as snn
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    l1 = snn.Leaky(beta=torch.full((4, 4, 4), 0.8), threshold=torch.ones(4, 4, 4),
                   init_hidden=True, reset_mechanism="zero")
    l2 = snn.Leaky(beta=torch.full((5,), 0.9), threshold=torch.ones(5), init_hidden=True,
                   reset_mechanism="zero")
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, stride=2), l1, torch.nn.AvgPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 2 * 2, 5), l2)
    with torch.no_grad():
        model[0].weight.mul_(3)
        model[4].weight.mul_(4)
    graph = export_to_nir(model, torch.zeros(1, 2, 10, 10), ignore_dims=[0])
    net = _import(graph, dt=1e-4)
    assert len(_convs(net)) == 1 and net.population("1").shape == (4, 4, 4)
    # AvgPool2d -> Flatten -> Linear composed into one dense projection of the pooled weights
    read, w = net.projections[1].weight, model[4].weight.detach().numpy()
    assert read.shape == (5, 64) and np.allclose(read[:, 0], w[:, 0] / 4)
    x = _frames((2, 10, 10), seed=1)
    out1, out2 = [], []
    with torch.no_grad():
        for t in range(T):
            s1 = l1(model[0](x[t]))
            out1.append(s1)
            out2.append(l2(model[4](model[2](s1).flatten(1))))
    _check(net, x, {"1": torch.stack(out1), "5": torch.stack(out2)})


def test_norse_cnn_imports_and_matches():
    """norse.to_nir writes the batch into Input and None for Flatten."""
    import norse.torch as norse

    torch.manual_seed(2)
    p = norse.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(0.5))
    model = norse.SequentialState(torch.nn.Conv2d(2, 4, 3, padding=1), norse.LIFBoxCell(p),
                                  torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 5),
                                  norse.LIFBoxCell(p))
    with torch.no_grad():
        model[0].weight.mul_(30)
        model[3].weight.mul_(30)
    graph = norse.to_nir(model, torch.zeros(1, 2, 8, 8), dt=1e-3)
    net = _import(graph, dt=1e-3, convention="norse")
    assert len(_convs(net)) == 1 and net.population("1").shape == (4, 8, 8)
    x = _frames((2, 8, 8), seed=2)
    outs, state = [[], []], [None, None]
    with torch.no_grad():
        for t in range(T):
            h, state[0] = model[1](model[0](x[t]), state[0])
            outs[0].append(h)
            h, state[1] = model[4](model[3](h.flatten(1)), state[1])
            outs[1].append(h)
    _check(net, x, {"1": torch.stack(outs[0]), "4": torch.stack(outs[1])})


@pytest.mark.parametrize("what", ["recurrent", "pool"])
def test_norse_empty_node_that_is_no_flatten_is_refused(what):
    """norse.to_nir writes None for every module it cannot express, not only Flatten: a
    LIFRecurrentCell between two dense layers, a MaxPool2d between convolutions. Passed
    through, the import would be another network without a word; it names the node."""
    import norse.torch as norse

    torch.manual_seed(3)
    if what == "recurrent":
        model = norse.SequentialState(torch.nn.Linear(20, 30), norse.LIFRecurrentCell(30, 30),
                                      torch.nn.Linear(30, 5), norse.LIFBoxCell())
        sample = torch.zeros(1, 20)
    else:
        model = norse.SequentialState(torch.nn.Conv2d(2, 4, 3, padding=1), norse.LIFBoxCell(),
                                      torch.nn.MaxPool2d(2), torch.nn.Conv2d(4, 4, 3),
                                      norse.LIFBoxCell())
        sample = torch.zeros(1, 2, 8, 8)
    graph = norse.to_nir(model, sample, dt=1e-3)
    empty = [k for k, v in graph.nodes.items() if v is None]
    assert empty, "norse wrote a node for it: the case this test guards is gone"
    with pytest.raises(snnkit.NetworkError, match=f"NIR node '{empty[0]}' is empty"):
        _import(graph, dt=1e-3, convention="norse")


def test_rockpool_lif_imports_and_matches():
    rockpool = pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(3)
    dt = 1e-3
    mod = Sequential(LinearTorch((12, 8)), LIFTorch(8, dt=dt, tau_syn=0.005, tau_mem=0.01,
                                                    max_spikes_per_dt=1),
                     LinearTorch((8, 4)), LIFTorch(4, dt=dt, tau_syn=0.004, tau_mem=0.02,
                                                   max_spikes_per_dt=1))
    with torch.no_grad():
        mod[0].weight.mul_(8)
        mod[2].weight.mul_(8)
    graph = to_nir(mod)
    net = _import(graph, dt=dt, convention="rockpool")
    x = _frames((12,), seed=3)
    ref = {}
    with torch.no_grad():
        mod.reset_state()
        _, _, rec = mod(x.transpose(0, 1), record=True)  # rockpool: [batch, time, ...]
    names = [p.name for p in net.neuron_populations]
    for name, key in zip(names, [k for k in rec if k.endswith("_output")
                                 and "LIF" in type(mod[int(k[0])]).__name__]):
        ref[name] = rec[key].transpose(0, 1)
    assert rockpool.__version__ and len(ref) == 2
    _check(net, x, ref)


def test_flat_input_before_conv_is_read_as_an_image():
    """A flat Input feeding a Conv2d with no input_shape (as lava-dl's netx converter writes
    it, whose shapes are [C, H, W] only in its hdf5 file) is read as a square image, noted in
    the report, and runs as the same network written with a [C, H, W] Input."""
    import nir

    rng = np.random.default_rng(4)
    w = rng.normal(0.5, 1.0, (3, 2, 3, 3))

    def graph(shape):
        nodes = {"in": nir.Input(input_type={"input": np.array(shape)}),
                 "conv": nir.Conv2d(input_shape=None, weight=w, stride=1, padding=1,
                                    dilation=1, groups=1, bias=np.zeros(3)),
                 "if": nir.IF(r=np.ones(1), v_threshold=np.ones(1) * 1.5),
                 "out": nir.Output(output_type={"output": np.array([3 * 6 * 6])})}
        return nir.NIRGraph(nodes=nodes, edges=[("in", "conv"), ("conv", "if"), ("if", "out")],
                            type_check=False)

    flat = _import(graph([72]), dt=1e-3)
    image = _import(graph([2, 6, 6]), dt=1e-3)
    assert flat.population("in").shape == (2, 6, 6) == image.population("in").shape
    assert any(n.parameter == "input_shape" and "square" in n.message for n in flat.nir_report)
    assert flat.projections[0].conv == image.projections[0].conv
    x = _frames((2, 6, 6), seed=4).reshape(T, B, -1).numpy()
    a, b = snnkit.simulate(flat, x), snnkit.simulate(image, x)
    assert 0 < a.spikes["if"].float().mean() < 1
    assert torch.equal(a.spikes["if"], b.spikes["if"])


def test_lava_dl_form_flat_input_conv_cubalif_scalars():
    """The form lava-dl's netx NIR export writes (not installable here: lava-dl needs Python
    < 3.11): a flat Input before a Conv2d with no input_shape, CubaLIF layers whose parameters
    are scalars, Flatten, Affine. It imports and runs as the same graph written with a
    [C, H, W] Input and per-neuron parameter arrays, spike for spike."""
    import nir

    rng = np.random.default_rng(7)
    w = rng.normal(0.6, 1.0, (3, 2, 3, 3))
    fc = rng.normal(0.3, 0.5, (4, 3 * 6 * 6))

    def cuba(n, full):
        def v(x):
            return np.full(n, x) if full else np.array(x)
        return nir.CubaLIF(tau_syn=v(2e-3), tau_mem=v(4e-3), r=v(1.0), v_leak=v(0.0),
                           v_threshold=v(1.0), w_in=v(1.0))

    def graph(shape, full):
        nodes = {"in": nir.Input(input_type={"input": np.array(shape)}),
                 "conv": nir.Conv2d(input_shape=None, weight=w, stride=1, padding=1,
                                    dilation=1, groups=1, bias=np.zeros(3)),
                 "lif1": cuba(3 * 6 * 6, full),
                 "flat": nir.Flatten(input_type={"input": np.array([3, 6, 6])}),
                 "fc": nir.Affine(weight=fc, bias=np.zeros(4)),
                 "lif2": cuba(4, full),
                 "out": nir.Output(output_type={"output": np.array([4])})}
        edges = [("in", "conv"), ("conv", "lif1"), ("lif1", "flat"), ("flat", "fc"),
                 ("fc", "lif2"), ("lif2", "out")]
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)

    lava = _import(graph([72], False), dt=1e-3)
    ref = _import(graph([2, 6, 6], True), dt=1e-3)
    assert lava.population("in").shape == (2, 6, 6)
    assert lava.projections[0].conv == ref.projections[0].conv
    x = _frames((2, 6, 6), seed=7).reshape(T, B, -1).numpy()
    a, b = snnkit.simulate(lava, x), snnkit.simulate(ref, x)
    for name in ("lif1", "lif2"):
        assert 0 < a.spikes[name].float().mean() < 1, f"{name} silent: test void"
        assert torch.equal(a.spikes[name], b.spikes[name]), name


def test_multi_spike_defaults_are_reported():
    """sinabs' default IAF (MultiSpike) emits several spikes in a step, which its NIR file does
    not say: a user importing a default model used to get other spikes and an all-'exact'
    report. Every sinabs and rockpool neuron node is now noted as APPROXIMATED, naming the
    option that makes it exact."""
    sinabs = pytest.importorskip("sinabs")
    import sinabs.layers as sl

    model = torch.nn.Sequential(torch.nn.Linear(6, 4), sl.IAFSqueeze(batch_size=1),
                                torch.nn.Linear(4, 3), sl.IAFSqueeze(batch_size=1))
    net = _import(sinabs.to_nir(model, torch.zeros(1, 6)), convention="sinabs")
    notes = [n for n in net.nir_report if n.parameter == "spikes"]
    assert sorted(n.node for n in notes) == ["1", "3"]
    assert all(not n.exact and "SingleSpike" in n.message for n in notes)


def test_a_rockpool_file_imports(tmp_path):
    """rockpool writes its Input as [1, n] before a Linear of [n]; nir.read's own type check
    refuses that file, so from_nir of it used to say 'not a NIR file, or damaged' while the
    same graph in memory imported. It now reads the file, with the batch dimension dropped."""
    import nir
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    torch.manual_seed(0)
    mod = Sequential(LinearTorch((6, 3)), LIFTorch(3, max_spikes_per_dt=1))
    graph = to_nir(mod)
    nir.write(tmp_path / "r.nir", graph)
    a = _import(tmp_path / "r.nir", dt=1e-3, convention="rockpool")
    b = _import(graph, dt=1e-3, convention="rockpool")
    assert [(p.name, p.size) for p in a.populations] == [(p.name, p.size) for p in b.populations]
    assert np.array_equal(a.projections[0].dense_weight(), b.projections[0].dense_weight())
    with pytest.raises(snnkit.NetworkError, match="not a NIR file"):  # damaged stays refused
        (tmp_path / "bad.nir").write_bytes(b"\x89HDF\r\n" + b"\0" * 40)
        from_nir(tmp_path / "bad.nir", dt=1e-3)
