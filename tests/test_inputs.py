"""Inputs as users of CNN libraries hold them: a [C, H, W] input population takes frames
[steps, batch, C, H, W] as they are; samples [batch, inputs] get a message saying to encode."""

import numpy as np
import pytest
import torch

import snnkit


def _conv_net():
    net = snnkit.Network()
    net.add_input("f", (2, 4, 4))
    net.add_population("c", (3, 4, 4), snnkit.IF())
    net.connect_conv("f", "c", np.random.default_rng(0).normal(0.5, 0.3, (3, 2, 3, 3)),
                     padding=1)
    return net


def test_frames_shaped_as_the_input_population_run_as_flattened_ones():
    """Frames [T, B, C, H, W] used to be refused ('expected shape [steps, batch, 32]')."""
    net, x = _conv_net(), torch.rand(6, 2, 2, 4, 4) < 0.4
    flat = snnkit.simulate(net, x.reshape(6, 2, -1), backend="fixed").spikes["c"]
    assert flat.any()
    for given in (x, {"f": x}, x.numpy()):
        assert torch.equal(snnkit.simulate(net, given, backend="fixed").spikes["c"], flat)
    # a shape that is not the population's: the message gives both forms it takes
    for bad in (x.transpose(3, 4)[..., :3], {"f": x.permute(0, 1, 3, 4, 2)}):
        with pytest.raises(snnkit.SimulationError, match=r"expected shape \[steps, batch, 32\] "
                                                         r"or \[steps, batch, 2, 4, 4\], got"):
            snnkit.simulate(net, bad)


def test_samples_without_steps_are_told_to_encode():
    net = snnkit.Network()
    net.add_input("in", 5)
    net.add_population("o", 2)
    net.connect("in", "o", 0.5)
    with pytest.raises(snnkit.SimulationError, match=r"got \(7, 5\).*encoders.regular"):
        snnkit.simulate(net, np.random.default_rng(0).random((7, 5)))
