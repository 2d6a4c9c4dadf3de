"""Training convolution projections (a CNN imported from NIR or made by snnkit.convert): the
kernel is the parameter, shared by every position; the forward pass equals the simulators and
the trained network keeps its convolutions."""

import numpy as np
import pytest
import torch
from torch import nn

import snnkit
from snnkit.training import SNN, fit


def conv_net(seed=0):
    rng = np.random.default_rng(seed)
    net = snnkit.Network()
    net.add_input("in", (2, 6, 6))
    net.add_population("c", (3, 6, 6), snnkit.LIF(beta=0.9, threshold=1.0))
    net.add_population("out", 4, snnkit.LIF(beta=0.9, threshold=1.0))
    net.connect_conv("in", "c", rng.normal(0.25, 0.3, (3, 2, 3, 3)), padding=1)
    net.connect("c", "out", rng.normal(0.05, 0.1, (4, 108)))
    return net


def frames(steps=12, batch=5, seed=1):
    return torch.from_numpy(np.random.default_rng(seed).random((steps, batch, 72)) < 0.3)


@pytest.mark.parametrize("arithmetic", ["float", "fixed"])
def test_forward_equals_the_simulator(arithmetic):
    net, x = conv_net(), frames()
    got = SNN(net, arithmetic=arithmetic)(x)
    want = snnkit.simulate(net, x, backend=arithmetic)
    for name in ("c", "out"):
        assert 0 < want.spikes[name].float().mean() < 1, f"{name} silent: test void"
        assert torch.equal(got.spikes[name].bool(), want.spikes[name]), name


def test_kernel_gradient_is_the_sum_over_positions():
    """The kernel's gradient is the dense twin's weight gradient summed over the positions
    that share each kernel entry (the twin: the same network with the expanded matrix)."""
    net, x = conv_net(), frames()
    twin = conv_net()
    pr = twin.projections[0]
    dense = snnkit.Network()
    for p in twin.populations:
        if p.is_input:
            dense.add_input(p.name, p.shape)
        else:
            dense.add_population(p.name, p.shape or p.size, p.neuron)
    dense.connect("in", "c", pr.dense_weight(), mask=pr.connections())
    dense.connect("c", "out", twin.projections[1].weight)
    grads = []
    for n in (net, dense):
        m = SNN(n)
        m(x).spikes["out"].sum().backward()
        grads.append(m.weights[0].grad)
    idx = SNN(net).conv0
    want = torch.zeros(pr.weight.size + 1, dtype=grads[1].dtype)
    want.index_add_(0, idx.reshape(-1), grads[1].reshape(-1))
    assert grads[0].shape == pr.weight.shape
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0].reshape(-1), want[1:], rtol=1e-5, atol=1e-6)


def test_trained_network_keeps_its_convolution_and_runs_as_trained():
    net = conv_net()
    x = np.random.default_rng(2).random((40, 72))
    y = np.random.default_rng(3).integers(0, 4, 40)
    model = SNN(net, arithmetic="fixed")
    fit(model, x, y, epochs=2, steps=6, progress=False, lr=3e-2)
    out = model.network()
    before = net.projections[0].weight
    pr = out.projections[0]
    assert pr.conv == net.projections[0].conv and pr.weight.shape == before.shape
    assert not np.array_equal(pr.weight, before), "the kernel did not train: test void"
    xs = snnkit.encoders.regular(x[:8], 6)
    with torch.no_grad():
        trained = model(xs)
    run = snnkit.simulate(out, xs, backend="fixed")
    for name in ("c", "out"):
        assert torch.equal(trained.spikes[name].bool(), run.spikes[name]), name


def test_a_converted_cnn_fine_tunes():
    """snnkit.convert makes convolution projections; fine-tuning the converted CNN used to
    stop at 'training convolution projections is not supported'."""
    from snnkit.training.pipeline import finetune_converted

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 10))
    rng = np.random.default_rng(0)
    x, y = rng.random((60, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, 60)
    ft = finetune_converted(model, x, y, steps=4, epochs=1, calibration=30, progress=False)
    assert any(p.conv is not None for p in ft.network.projections)
    assert ft.history.epochs == 1


def test_fit_and_evaluate_take_a_cnns_images():
    """fit / evaluate refused images [N, C, H, W] of a CNN (only flat samples); they are
    flattened as the network indexes them: the same results as the flat samples. Sequences
    given without encoding='sequence' are named in the error."""
    from snnkit.errors import SimulationError
    from snnkit.training import evaluate

    x = np.random.default_rng(2).random((12, 72))
    y = np.random.default_rng(3).integers(0, 4, 12)
    flat, image = (evaluate(SNN(conv_net()), d, y, steps=5) for d in (x, x.reshape(12, 2, 6, 6)))
    assert flat["spikes"] > 0 and flat["accuracy"] == image["accuracy"]
    assert np.array_equal(flat["predictions"], image["predictions"])
    fit(SNN(conv_net()), x.reshape(12, 2, 6, 6), y, epochs=1, steps=4, progress=False)
    with pytest.raises(SimulationError, match="train with encoding='sequence'"):
        fit(SNN(conv_net()), x.reshape(12, 8, 9), y, epochs=1, progress=False)
