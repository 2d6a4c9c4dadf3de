"""A converted digits network on the emulated FPGA: the whole test split, bit for bit."""

import torch

import snnkit
from snnkit import datasets, emulated_board, encoders
from snnkit.compiler import HardwareConfig
from snnkit.convert import convert


def test_converted_digits_network_matches_fixed_point_on_the_whole_test_split():
    x_tr, _, x_te, y_te = datasets.digits()
    ann = datasets.train_qcfs("mlp", levels=16)  # the demo's model (cached)
    conv = convert(ann, x_tr[:500], mode="rate", input="poisson", v_init=0.5)
    x = encoders.regular(x_te, 16)
    ref = snnkit.simulate(conv.network, x, 16, backend="fixed")
    with emulated_board.running(HardwareConfig.for_network(conv.network)) as (url, _):
        with snnkit.Device(url) as dev:
            dev.load(conv.network)
            board = dev.run(x, 16)
    for name, spikes in ref.spikes.items():  # every spike of every layer, every sample
        assert torch.equal(board.spikes[name].cpu(), spikes.cpu()), name
    pred = board.predict(conv.output).numpy()
    assert len(pred) == len(y_te) == 450
    assert (pred == y_te).mean() >= 0.97
