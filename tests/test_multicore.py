"""The multi-core RTL (hdl/snn_multi.v + snn_router.v, K snn_cores and the spike router) runs
a partitioned network bit for bit like the fixed-point simulator, under Verilator and Icarus:
spikes, states and STDP weights on every step, with STDP on projections that cross cores in
the same step (delay 0: a later wave) and through the step barrier (delay 1); and as one
board of many cores over the UART protocol (the emulated hdl/host_multi_top.v), on a lossy
line and across a board swap too."""

import re

import numpy as np
import pytest
import torch

import snnkit
from snnkit.device import Device
from snnkit.emulated_board import running
from snnkit.multicore import build_multi_images, run_multi

from .test_cluster import CONFIG, crossing_net

RECORD = ("v", "i", "theta", "weights")


def with_biases(net):
    """``net`` with a different bias for every neuron of h and out (each core's biases go to
    its bias memory), quantised again."""
    for pop in net.neuron_populations:
        pop.neuron.bias = np.arange(-pop.size // 2, pop.size - pop.size // 2) / 64
    return snnkit.quantize(net)[0]


def assert_same(res, ref):
    for name in ref.spikes:
        assert torch.equal(res.spikes[name], ref.spikes[name]), name
    for name, st in ref.states.items():
        for var in st:
            assert torch.equal(res.states[name][var].long(), st[var].long()), (name, var)
    assert set(res.weights) == set(ref.weights)
    for name in ref.weights:
        assert torch.equal(res.weights[name], ref.weights[name]), name
        assert torch.equal(res.weight_trace[name], ref.weight_trace[name]), name


@pytest.mark.parametrize("backend", ["verilator"])  # Icarus: tests/test_hdl_cocotb.py (multi)
def test_two_cores_equal_the_simulator_with_crossing_stdp(backend):
    net = with_biases(crossing_net())
    x = np.random.default_rng(1).random((16, 2, 8)) < 0.35
    ref = snnkit.simulate(net, x, backend="fixed", record=RECORD)
    res = snnkit.simulate(net, x, backend=backend, record=RECORD, cores=2, config=CONFIG,
                          allocator="in_order")
    assert_same(res, ref)
    assert ref.spikes["out"].any() and ref.spikes["h"].any()


def test_one_wave_when_only_delayed_projections_cross():
    """h -> out with delay 1: both cores run each step at once; the design's cycles per step
    are reported."""
    net = crossing_net(seed=2)
    net.projections[2].delay = 1
    x = np.random.default_rng(3).random((12, 1, 8)) < 0.35
    ref = snnkit.simulate(net, x, backend="fixed", record=RECORD)
    run = run_multi(net, x, None, "verilator", 2, record=RECORD, config=CONFIG,
                    allocator="in_order")
    assert run.partition.waves == [[0, 1]]
    assert_same(run.result, ref)
    assert len(run.cycles_per_step[0]) == 12 and min(run.cycles_per_step[0]) > 0


def test_route_table_gives_each_neuron_its_whole_network_index():
    part = snnkit.partition(crossing_net(), 2, CONFIG, allocator="in_order")
    mi = build_multi_images(part, CONFIG)
    route = [int(w, 16) for w in mi.images["route.hex"].split()]
    g_w, n_aw = mi.index_bits, 6  # N_MAX 64, 2 cores
    for core in part.cores:
        for name, idx in core.parts.items():
            for n, gi in enumerate(idx):
                w = route[core.index * (1 << g_w) + (core.index << n_aw)
                          + core.net.offset(name) + n]
                assert w == (1 << g_w) | (part.net.offset(name) + gi)
    with pytest.raises(snnkit.NetworkError, match="power of two"):
        build_multi_images(snnkit.partition(crossing_net(), 3, CONFIG), CONFIG)


def test_one_board_many_cores_over_the_uart_protocol(capsys):
    """The emulated multi-core board (hdl/host_multi_top.v): snnkit.Device partitions and
    loads the network (per-neuron biases too; its upload bar ends at exactly 100%), runs it
    with STDP on, two samples: the simulator's spikes and weights."""
    net = with_biases(crossing_net(seed=4))
    x = np.random.default_rng(5).random((20, 2, 8)) < 0.35
    ref = snnkit.simulate(net, x, backend="fixed")
    with running(CONFIG, cores=2) as (url, _):
        with Device(url) as dev:
            assert dev.info.cores == 2 and dev.info.regions[10] == 2 * 128
            dev.load(net, progress=True)
            res = dev.run(x)
            counters = dev.read_counters()
    err = capsys.readouterr().err
    assert re.search(r"upload: 100%\|[^\n\r]*\| (\S+)/\1 ", err), err[-300:]
    for name in ref.spikes:
        assert torch.equal(res.spikes[name], ref.spikes[name]), name
    for name, w in ref.weights.items():
        assert torch.equal(res.weights[name], w), name
    assert counters["steps"] == 20 and counters["crc_errors"] == 0


def test_many_cores_on_a_lossy_line_and_after_a_board_swap():
    """The multi-core board behind a line that damages 0.5% of the bytes: the upload (each
    core's part through CORE_SEL, read back and repaired), two learning samples and the
    weights written back equal the simulator's; then, with reconnect, the board is swapped
    for a fresh one mid-session and the network reloaded onto its cores."""
    from snnkit.lossy_proxy import LossyProxy
    from snnkit.quantize import integer_weights

    net = with_biases(crossing_net(seed=4))
    x = np.random.default_rng(5).random((12, 2, 8)) < 0.35
    ref = snnkit.simulate(net, x, backend="fixed")
    with running(CONFIG, cores=2) as (url, _), running(CONFIG, cores=2) as (fresh, _):
        with LossyProxy(url, rate=0.005, seed=3) as proxy, Device(proxy.url,
                                                                   reconnect=True) as dev:
            dev.load(net)
            assert_same_spikes_weights(dev.run(x), ref)
            dev.restore_weights()
            qnet = dev.net
            for j, w in enumerate(dev.read_weights().values()):
                assert np.array_equal(w.numpy(), integer_weights(qnet, j, qnet.quantization))
            proxy.rate = 0.0
            proxy.retarget(fresh)
            assert_same_spikes_weights(dev.run(x), ref)
            stats = dict(dev.stats)
    assert proxy.faults > 20 and stats["resends"] > 5 and stats["board_resets"] == 1


def assert_same_spikes_weights(res, ref):
    for name in ref.spikes:
        assert torch.equal(res.spikes[name], ref.spikes[name]), name
    for name, w in ref.weights.items():
        assert torch.equal(res.weights[name], w), name


def test_compile_cores_cli_writes_each_core_and_the_router_tables(tmp_path):
    from snnkit.cli import main

    crossing_net().save(tmp_path / "net.snn")
    assert main(["compile", str(tmp_path / "net.snn"), "-o", str(tmp_path / "out"),
                 "--cores", "2", "--n-max", "64", "--syn-max", "1024"]) == 0
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"c0_pop.hex", "c1_weights.hex", "route.hex", "inmap.hex", "waves.hex",
            "report.txt"} <= files
    assert "on 2 cores" in (tmp_path / "out" / "report.txt").read_text()
