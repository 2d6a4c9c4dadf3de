"""ANN -> SNN conversion: layer folding, rate convergence, exact lossless mode, errors, CLI."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import snnkit
from snnkit.ann import ann_forward, blocks, to_qcfs
from snnkit.cli import main
from snnkit.convert import convert
from snnkit.qcfs import QCFS


def _init(model, seed, grid=None):
    """Random parameters (on a dyadic grid when ``grid`` is given, so float math is exact)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if isinstance(p, nn.Parameter) and p.dim() == 0:
                continue
            v = torch.rand(p.shape, generator=g) * 1.2 - 0.5
            p.copy_(torch.round(v * grid) / grid if grid else v)
    return model.eval()


def _bn(n, two_d=False, exact=False):
    bn = (nn.BatchNorm2d if two_d else nn.BatchNorm1d)(n, eps=0.0 if exact else 1e-5)
    bn.running_mean.copy_(torch.linspace(-0.25, 0.25, n))
    bn.running_var.copy_(torch.full((n,), 4.0) if exact else torch.linspace(0.5, 2.0, n))
    return bn


def _models(act, exact=False):
    """One small model per supported layer type; ``act()`` builds the activation."""
    return {
        "linear": (nn.Sequential(nn.Linear(6, 5), act(), nn.Linear(5, 3), act()), (6,)),
        "conv": (nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), act(), nn.Flatten(),
                               nn.Linear(48, 4), act()), (1, 4, 4)),
        "avgpool": (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), act(), nn.AvgPool2d(2),
                                  nn.Flatten(), nn.Linear(8, 3), act()), (1, 4, 4)),
        "batchnorm": (nn.Sequential(nn.Linear(6, 5), _bn(5, exact=exact), act(),
                                    nn.Dropout(0.5), nn.Linear(5, 3), act()), (6,)),
        "conv-bn": (nn.Sequential(nn.Conv2d(1, 2, 3), _bn(2, True, exact), act(), nn.Flatten(),
                                  nn.Linear(8, 3), act()), (1, 4, 4)),
        # pooling into a padded convolution: one convolution (6x6 kernel, stride 2)
        "pool-conv": (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), act(), nn.AvgPool2d(2),
                                    nn.Conv2d(2, 3, 3, padding=1), act(), nn.Flatten(),
                                    nn.Linear(12, 3), act()), (1, 4, 4)),
        # the same on 5x5: the pooling drops the last column, the padding does not: a matrix
        "pool-conv-odd": (nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), act(), nn.AvgPool2d(2),
                                        nn.Conv2d(2, 3, 3, padding=1), act(), nn.Flatten(),
                                        nn.Linear(12, 3), act()), (1, 5, 5)),
    }


def _inputs(shape, n, seed=0, levels=16):
    rng = np.random.default_rng(seed)
    return np.floor(rng.random((n,) + shape) * (levels + 1)) / levels  # multiples of 1/16


# --------------------------------------------------------------------------- folding


@pytest.mark.parametrize("name", list(_models(nn.ReLU)))
def test_folded_blocks_equal_the_ann(name):
    model, shape = _models(nn.ReLU)[name]
    _init(model, 1)
    x = np.random.default_rng(2).normal(size=(20,) + shape)
    got = ann_forward(blocks(model, shape), x)[-1]
    want = model.double()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_which_blocks_are_convolutions():
    """Conv2d (with BatchNorm2d; pooling into a padded Conv2d on an even image) is a
    convolution block; Linear, pooling into Linear, and pooling into a padded Conv2d that
    drops a border the padding keeps are matrices."""
    kinds = {name: [b.conv is not None for b in blocks(m, shape)]
             for name, (m, shape) in _models(nn.ReLU).items()}
    assert kinds == {"linear": [False, False], "conv": [True, False],
                     "avgpool": [True, False], "batchnorm": [False, False],
                     "conv-bn": [True, False], "pool-conv": [True, True, False],
                     "pool-conv-odd": [True, False, False]}


def test_batchnorm_folding_is_exact():
    conv = _init(nn.Conv2d(2, 3, 3, padding=1), 3)
    model = nn.Sequential(conv, _bn(3, True), nn.ReLU()).eval()
    (blk,) = blocks(model, (2, 5, 5))
    assert blk.conv is not None and blk.weight.shape == (3, 2, 3, 3)  # folded into the kernel
    x = np.random.default_rng(4).normal(size=(7, 2, 5, 5))
    z = blk.affine(x.reshape(7, -1))
    np.testing.assert_allclose(x.reshape(7, -1) @ blk.dense().T + blk.bias, z, rtol=0,
                               atol=1e-12)
    with torch.no_grad():
        want = model[1].double()(model[0].double()(torch.from_numpy(x))).numpy().reshape(7, -1)
    np.testing.assert_allclose(z, want, rtol=0, atol=1e-12)
    assert blk.positions == [0, 1, 2]


def test_conv_connectivity_is_its_window():
    model = _init(nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                nn.Linear(32, 2)), 5)
    conv = convert(model, _inputs((1, 4, 4), 30))
    mask = conv.network.projections[0].connections()
    assert mask.shape == (32, 16)
    # output pixel (r, c) sees the 3x3 input window around it, clipped at the border
    for ch in range(2):
        for r in range(4):
            for c in range(4):
                want = {(i, j) for i in range(r - 1, r + 2) for j in range(c - 1, c + 2)
                        if 0 <= i < 4 and 0 <= j < 4}
                got = {divmod(int(k), 4) for k in np.flatnonzero(mask[ch * 16 + r * 4 + c])}
                assert got == want


def _cnn(act):
    """The digits CNN's layout, small: Conv + BN, AvgPool + padded Conv, AvgPool + Linear."""
    model = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), _bn(3, True), act(), nn.AvgPool2d(2),
                          nn.Conv2d(3, 4, 3, padding=1), act(), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(16, 5), act())
    return _init(model, 61, grid=16), (1, 8, 8)


@pytest.mark.parametrize("case", ["rate", "rate-per-channel", "lossless"])
def test_converted_cnn_has_conv_projections_with_the_dense_forms_spikes(case, monkeypatch,
                                                                        tmp_path):
    """Both convolution blocks (Conv + BatchNorm; AvgPool + padded Conv) become convolution
    projections whose expansion is the dense conversion's matrix: the same integers, so the
    same fixed-point spikes bit for bit, the same .snn round trip and the same hardware image
    (the compiler expands them)."""
    from snnkit import ann
    from snnkit.compiler import build_images
    from snnkit.quantize import integer_weights, quantize

    lossless = case == "lossless"
    model, shape = _cnn((lambda: QCFS(4, 2.0)) if lossless else nn.ReLU)
    x = _inputs(shape, 24, seed=62)
    opts = dict(mode="lossless" if lossless else "rate", per_channel=case == "rate-per-channel")
    conv = convert(model, x, **opts)
    monkeypatch.setattr(ann, "_conv_block", lambda run, shape: None)  # every block a matrix
    dense = convert(model, x, **opts)
    monkeypatch.undo()
    expanded = convert(model, x, convolutions="dense", **opts)  # (what training needs)
    into = {pr.target: pr for pr in conv.network.projections if not pr.source.startswith(
        ("bias", "clock"))}
    assert into["layer1"].conv is not None and into["layer1"].weight.shape == (3, 1, 3, 3)
    assert into["layer2"].conv is not None and into["layer2"].weight.shape == (4, 3, 6, 6)
    assert into["output"].conv is None
    for c in (dense, expanded):
        assert not any(pr.conv is not None for pr in c.network.projections)
    q = conv.network.quantization
    assert q == dense.network.quantization
    qc, qd = quantize(conv.network)[0], quantize(dense.network)[0]
    for i, (pc, pd) in enumerate(zip(conv.network.projections, dense.network.projections)):
        wc, wd = integer_weights(qc, i, q), integer_weights(qd, i, q)
        np.testing.assert_array_equal(pc.conv.dense(wc) if pc.conv else wc, wd, err_msg=pc.name)
        np.testing.assert_array_equal(pc.connections(), pd.connections(), err_msg=pc.name)
    assert conv.network.n_synapses == dense.network.n_synapses
    conv.network.save(tmp_path / "cnn.snn")
    loaded = snnkit.load(tmp_path / "cnn.snn")
    assert sum(pr.conv is not None for pr in loaded.projections) == 2
    steps = conv.steps if lossless else 24
    inp = conv.encode(x, steps)
    runs = [snnkit.simulate(n, inp, steps, "fixed") for n in
            (conv.network, dense.network, loaded, expanded.network)]
    for k in runs[0].spikes:
        for other in runs[1:]:
            assert torch.equal(runs[0].spikes[k], other.spikes[k]), k
    assert runs[0].counts("output").sum() > 0
    if lossless:  # float: dyadic weights, exact sums; the spikes are the levels
        fl = conv.run(x)
        for layer, want in zip(conv.layers, conv.reference(x)):
            np.testing.assert_array_equal(fl.counts(layer).numpy(), want, err_msg=layer)
    else:  # spike input: compiles; the image is the dense network's
        assert build_images(qc)[1] == build_images(qd)[1]


def test_per_neuron_units_expand_a_convolution(monkeypatch):
    """A convolution after a per-neuron balanced layer cannot share one kernel: it is
    converted as its matrix, connectivity kept, with the dense conversion's spikes."""
    from snnkit import ann

    model = _init(nn.Sequential(nn.Linear(16, 18), nn.ReLU(), nn.Unflatten(1, (2, 3, 3)),
                                nn.Conv2d(2, 2, 2), nn.ReLU()), 71)
    x = _inputs((16,), 30, seed=72)
    assert blocks(model, (16,))[1].conv is not None
    conv = convert(model, x, per_channel=True)
    (pr,) = [p for p in conv.network.projections if p.name == "layer1->output"]
    assert pr.conv is None and pr.mask is not None and pr.mask.sum() == 8 * 2 * 2 * 2
    monkeypatch.setattr(ann, "_conv_block", lambda run, shape: None)
    dense = convert(model, x, per_channel=True)
    a, b = (c.run(x, 32, "fixed").spikes["output"] for c in (conv, dense))
    assert torch.equal(a, b) and a.sum() > 0


# --------------------------------------------------------------------------- rate mode


@pytest.mark.parametrize("name", list(_models(nn.ReLU)))
def test_rate_mode_converges_to_the_ann(name):
    model, shape = _models(nn.ReLU)[name]
    _init(model, 11)
    x = _inputs(shape, 40, seed=12)
    conv = convert(model, x, normalization="max")
    acts = ann_forward(blocks(model, shape), x)
    errs = []
    for steps in (16, 256):
        res = conv.run(x, steps)
        err = 0.0
        for layer, a in zip(conv.layers, acts):
            rate = res.counts(layer).numpy() / steps
            err = max(err, np.abs(rate - a / a.max()).mean())
        errs.append(err)
    assert errs[1] < errs[0]
    assert errs[1] < 0.02, errs


def test_rate_mode_poisson_input_approaches_current_input():
    model, shape = _models(nn.ReLU)["linear"]
    _init(model, 21)
    x = _inputs(shape, 30, seed=22)
    ref = convert(model, x, input="current").run(x, 512).counts("output").numpy() / 512
    got = convert(model, x, input="poisson").run(x, 512).counts("output").numpy() / 512
    assert np.abs(got - ref).mean() < 0.03


def test_default_input_is_spikes_the_hardware_takes(tmp_path):
    """The default conversion feeds regular spike trains (deployable: the compiler takes it)
    that approach the constant current's rates; inputs outside [0, 1] are refused with what
    to do."""
    model, shape = _models(nn.ReLU)["linear"]
    _init(model, 23)
    x = _inputs(shape, 30, seed=24)
    conv = convert(model, x)
    assert conv.input == "spikes" and conv.network.populations[0].encoding == "spikes"
    enc = conv.encode(x, 64)
    assert enc.dtype == torch.bool
    assert torch.equal(enc, snnkit.encoders.regular(x.reshape(30, -1), 64))
    snnkit.compile(conv.network, tmp_path)  # deployable as it is
    ref = convert(model, x, input="current").run(x, 512).counts("output").numpy() / 512
    got = conv.run(x, 512).counts("output").numpy() / 512
    assert np.abs(got - ref).mean() < 0.02
    with pytest.raises(snnkit.NetworkError, match=r"values in \[-1, 1\].*input='current'"):
        convert(model, x * 2 - 1)


def test_rate_mode_network_has_scalar_neuron_parameters():
    model, shape = _models(nn.ReLU)["batchnorm"]
    conv = convert(_init(model, 3), _inputs(shape, 30), per_channel=True)
    for pop in conv.network.neuron_populations:
        for name in ("threshold", "v_init", "bias"):
            assert np.ndim(getattr(pop.neuron, name)) == 0, (pop.name, name)


def _agreement(conv, model, x, steps=32):
    with torch.no_grad():
        ann = model(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()
    return float((conv.predict(x, steps=steps) == ann).mean())


def test_an_output_layer_of_negative_logits_is_lifted_until_its_top_class_fires():
    """IF neurons never fire on negative logits: a sample whose logits are all negative had
    every count 0 and was read as class 0. The conversion adds one amount to every output
    bias (the ANN's argmax unchanged), so the top class fires and the predictions are the
    ANN's."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 4))
    with torch.no_grad():
        model[2].bias.sub_(3.0)  # every logit negative on every sample
    x = np.random.default_rng(6).random((120, 6))
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32))
    assert logits.max() < 0
    conv = convert(model, x)
    assert conv.output_lift > -float(logits.max(1).values.min())  # past the weakest top
    assert _agreement(conv, model, x) >= 0.9
    assert (conv.run(x, 32).counts("output").sum(1) > 0).all()  # every sample's top fires
    # an output the ANN itself rectifies, or logits whose tops already fire: nothing added
    relu_out = nn.Sequential(*model, nn.ReLU())
    assert convert(relu_out, x).output_lift == 0
    with torch.no_grad():
        model[2].bias.add_(6.0)
    assert convert(model, x).output_lift == 0


def test_output_counts_share_one_scale_when_hidden_layers_are_per_channel():
    """The class is the output with most spikes: balancing the output neurons each to its own
    maximum rate (per_channel) would rank them by logit / its own maximum, not by logit."""
    torch.manual_seed(7)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 3))
    with torch.no_grad():
        model[2].weight[0].mul_(6.0)  # class 0's logits span 6x the others'
        model[2].bias.copy_(torch.tensor([-1.5, 0.5, 0.5]))
    x = np.random.default_rng(8).random((150, 6))
    conv = convert(model, x, per_channel=True)
    assert _agreement(conv, model, x) >= 0.9


def test_fixed_point_keeps_the_rate_predictions():
    model, shape = _models(nn.ReLU)["conv"]
    _init(model, 31)
    x = _inputs(shape, 60, seed=32)
    conv = convert(model, x)
    fl, fx = conv.predict(x, 64, "float"), conv.predict(x, 64, "fixed")
    assert (fl == fx).mean() >= 0.9


# --------------------------------------------------------------------------- lossless mode


def _qcfs_model(name, levels=4, lam=2.0):
    model, shape = _models(lambda: QCFS(levels, lam), exact=True)[name]
    return _init(model, 41, grid=16), shape


def _torch_levels(model, x):
    """The QCFS level (integer) of every activation of the torch model, in float64."""
    out, h = [], torch.from_numpy(x)
    model = model.double()
    with torch.no_grad():
        for m in model:
            h = m(h)
            if isinstance(m, QCFS):
                out.append((h * m.levels / m.threshold).round().reshape(len(x), -1).numpy())
    return out


@pytest.mark.parametrize("inp", ["spikes", "current"])
@pytest.mark.parametrize("name", list(_models(nn.ReLU)))
def test_lossless_mode_reproduces_the_quantised_ann_exactly(name, inp):
    model, shape = _qcfs_model(name)
    x = _inputs(shape, 64, seed=42)
    conv = convert(model, x, mode="lossless", input=inp)
    res = conv.run(x)
    for layer, want in zip(conv.layers, _torch_levels(model, x)):
        np.testing.assert_array_equal(res.counts(layer).numpy(), want, err_msg=layer)
    assert 0 < sum(int(res.counts(n).sum()) for n in conv.layers)


@pytest.mark.parametrize("name", ["linear", "avgpool", "conv-bn"])
def test_lossless_fixed_point_matches_its_integer_reference(name):
    model, shape = _qcfs_model(name, levels=8)
    x = _inputs(shape, 64, seed=43)
    conv = convert(model, x, mode="lossless", input="spikes")
    res = conv.run(x, backend="fixed")
    ref = conv.reference(x, "fixed")
    for layer, want in zip(conv.layers, ref):
        np.testing.assert_array_equal(res.counts(layer).numpy(), want, err_msg=layer)
    # running past the schedule adds no spike: every layer is silenced after its burst
    longer = conv.run(x, conv.steps + 10, backend="fixed")
    for layer in conv.layers:
        assert torch.equal(longer.counts(layer), res.counts(layer))


def test_to_qcfs_replaces_relus_and_quantises_the_output():
    model, shape = _models(nn.ReLU)["linear"]
    model = model[:3]  # Linear, ReLU, Linear: output without activation
    _init(model, 51)
    x = _inputs(shape, 50)
    q = to_qcfs(model, 4, x)
    acts = [m for m in q.modules() if isinstance(m, QCFS)]
    assert len(acts) == 2 and not any(isinstance(m, nn.ReLU) for m in q.modules())
    with torch.no_grad():
        y = q(torch.tensor(x, dtype=torch.float32))
    steps = y / (acts[-1].threshold / 4)
    assert torch.allclose(steps, steps.round(), atol=1e-4) and y.min() >= 0


# --------------------------------------------------------------------------- errors


def test_unsupported_layer_is_named_with_its_position():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Sigmoid(), nn.Linear(4, 2))
    with pytest.raises(snnkit.NetworkError, match=r"model layer 2 \(2: Sigmoid\)"):
        convert(model, np.zeros((2, 4)))


def test_unsupported_function_is_named():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return torch.tanh(self.fc(x))

    with pytest.raises(snnkit.NetworkError, match=r"model layer 1 \(tanh.*; use ReLU"):
        convert(M(), np.zeros((2, 4)))


def test_maxpool_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 2))
    with pytest.raises(snnkit.NetworkError, match="MaxPool2d.*; use AvgPool2d"):
        convert(model, np.zeros((2, 1, 4, 4)))


def test_functional_avg_pool_names_the_module():
    """F.avg_pool2d was refused with no hint (the module converts)."""

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.f = nn.Conv2d(1, 2, 3), nn.Linear(2 * 3 * 3, 3)

        def forward(self, x):
            return self.f(torch.nn.functional.avg_pool2d(torch.relu(self.c(x)), 2).flatten(1))

    with pytest.raises(snnkit.NetworkError, match=r"avg_pool2d: function\) is not supported "
                                                  r"for conversion; use the module nn.AvgPool2d"):
        convert(M(), np.zeros((2, 1, 8, 8)))


def test_lossless_needs_qcfs_activations():
    model, shape = _models(nn.ReLU)["linear"]
    with pytest.raises(snnkit.NetworkError, match="QCFS"):
        convert(model, _inputs(shape, 4), mode="lossless")


def test_bad_options_and_inputs_are_named():
    model, shape = _models(nn.ReLU)["linear"]
    x = _inputs(shape, 4)
    with pytest.raises(snnkit.NetworkError, match="normalization"):
        convert(model, x, normalization="l2")
    with pytest.raises(snnkit.NetworkError, match="convolutions: must be 'shared' or 'dense'"):
        convert(model, x, convolutions="sparse")
    for steps in (0, -1, 2.5, "16"):
        with pytest.raises(snnkit.NetworkError, match="steps: must be a positive integer"):
            convert(model, x, steps=steps)
    bad = np.array(x, dtype=np.float64)
    bad[2].flat[0] = np.nan
    with pytest.raises(snnkit.NetworkError, match=r"calibration_data: NaN or inf in sample 2 "
                                                  r"\(1 of 4 samples\)"):
        convert(model, bad)
    conv = convert(model, x, input="poisson")
    with pytest.raises(snnkit.SimulationError, match=r"values in \[0, 1\]"):
        conv.encode(x * 3, 8)


# --------------------------------------------------------------------------- datasets, CLI


def test_digits_split_is_fixed_and_on_the_sixteenth_grid():
    from snnkit import datasets

    a, b = datasets.digits(), datasets.digits(image=True)
    assert [len(v) for v in a] == [1347, 1347, 450, 450]
    np.testing.assert_array_equal(a[0], b[0].reshape(-1, 64))
    np.testing.assert_array_equal(a[3], b[3])
    assert a[0].min() == 0 and a[0].max() == 1
    np.testing.assert_array_equal(a[0] * 16, np.round(a[0] * 16))
    assert np.bincount(a[3]).min() >= 40  # stratified: every class in the test set


def test_convert_main_writes_a_loadable_network(tmp_path):
    model, shape = _models(nn.ReLU)["conv"]
    _init(model, 61)
    x = _inputs(shape, 20)
    torch.export.save(torch.export.export(model, (torch.zeros((2,) + shape),)),
                      tmp_path / "m.pt2")  # read without unpickling (tests/test_untrusted_files)
    np.savez(tmp_path / "calib.npz", x=x)
    out = tmp_path / "net.snn"
    assert main(["convert", str(tmp_path / "m.pt2"), "--calib", str(tmp_path / "calib.npz"),
                 "-o", str(out), "--steps", "20"]) == 0
    net = snnkit.load(out)
    info = json.loads((tmp_path / "net.snn.conversion.json").read_text())
    assert info["mode"] == "rate" and info["steps"] == 20 and info["output"] == "output"
    conv = convert(model, x, steps=20)
    a = snnkit.simulate(net, conv.encode(x), 20).spikes["output"]
    assert torch.equal(a, conv.run(x).spikes["output"])
