"""cocotb bench of hdl/snn_multi.v (K cores and the spike router) through its host bus.

The bus driver and the output monitor are bench_core's; the reference model is snnkit's
fixed-point simulator on the whole network (never a re-implementation); the images come from
snnkit.multicore (the partition over the design's cores). Each step, the spikes from the
merged output FIFO, every core's v / i / theta (through CORE_SEL) and the plastic weights
are compared with the simulator's.
"""

import cocotb
import numpy as np
import torch
from bench_core import config, drain, start, wait_status

import snnkit
from snnkit.memory_map import (
    FIFO_MARK,
    PLASTIC,
    POP_TABLE,
    PROJ_TABLE,
    STATE_STRIDE,
    CoreRegion,
    Ctrl,
    MultiReg,
    MultiRegion,
    Reg,
    StateField,
    Status,
    core_address,
)
from snnkit.multicore import build_multi_images

WEIGHT, STATE = core_address(CoreRegion.WEIGHT), core_address(CoreRegion.STATE)
BIAS = core_address(CoreRegion.BIAS)


def crossing_net(seed: int) -> snnkit.Network:
    """in -> h (STDP), h -> h (delay 1, STDP), h -> out (delay 0, STDP): with h split over
    two cores both crossings carry plastic synapses."""
    rng = np.random.default_rng(seed)
    net = snnkit.Network(name="crossing")
    net.add_input("in", 6)
    net.add_population("h", 8, snnkit.CubaLIF(alpha=0.5, beta=0.8, threshold=1.0))
    net.add_population("out", 3, snnkit.LIF(beta=0.9, threshold=1.2))
    rule = dict(a_plus=0.05, a_minus=0.04, w_min=-1.0, w_max=1.0)
    net.connect("in", "h", rng.normal(0.5, 0.3, (8, 6)), stdp=snnkit.STDP(**rule))
    net.connect("h", "h", rng.normal(0.0, 0.4, (8, 8)), delay=1,
                mask=rng.random((8, 8)) < 0.5, stdp=snnkit.STDP(**rule, rule="nearest"))
    net.connect("h", "out", rng.normal(0.4, 0.3, (3, 8)),
                stdp=snnkit.STDP(**rule, bounds="soft"))
    return snnkit.quantize(net)[0]


def words(text: str) -> list[int]:
    return [int(x, 16) for x in text.split()]


async def load(bus, part, mi) -> None:
    """Each core's tables and weights through CORE_SEL, the router's tables, then reset."""
    wb = int(bus.dut.W_BITS.value)
    wv = words(mi.images["waves.hex"])
    for core, rep in zip(part.cores, mi.reports):
        k = core.index
        await bus.write(MultiReg.CORE_SEL, k)
        await bus.write(MultiReg.WAVE + k, wv[k])
        if rep is None:
            continue
        for a, w in enumerate(words(mi.images[f"c{k}_pop.hex"])):
            await bus.write(POP_TABLE + a, w)
        for a, w in enumerate(words(mi.images[f"c{k}_proj.hex"])):
            await bus.write(PROJ_TABLE + a, w)
        for a, w in enumerate(words(mi.images[f"c{k}_weights.hex"])[:rep.weight_words]):
            await bus.write(WEIGHT + a, (w >> wb) * PLASTIC | (w & ((1 << wb) - 1)))
        for g, b in enumerate(words(mi.images[f"c{k}_bias.hex"])):  # per-neuron biases
            await bus.write(BIAS + g, b)
        n_pop, n_proj, _ = words(mi.images[f"c{k}_regs.hex"])
        await bus.write(Reg.N_POP, n_pop)
        await bus.write(Reg.N_PROJ, n_proj)
    await bus.write(MultiReg.N_WAVES, wv[-1])
    for region, name in ((core_address(MultiRegion.ROUTE), "route.hex"),
                         (core_address(MultiRegion.INMAP), "inmap.hex")):
        for a, w in enumerate(words(mi.images[name])):
            if w:
                await bus.write(region + a, w)
    await bus.write(Reg.LEARN, 1)
    await bus.write(Reg.CTRL, Ctrl.RESET_STATE)
    await wait_status(bus, Status.BUSY, False)


@cocotb.test()
async def a_partitioned_network_matches_the_fixed_simulator_every_step(dut):
    bus = await start(dut)
    cores = int(dut.CORES.value)
    assert await bus.read(MultiReg.CORES) == cores
    cfg = config(dut)
    net = crossing_net(1)
    part = snnkit.partition(net, cores, cfg, allocator="in_order")
    assert {net.projections[j].name for j in part.crossings} == {"h->h", "h->out"}
    mi = build_multi_images(part, cfg)
    await load(bus, part, mi)
    steps = 10
    x = torch.from_numpy(np.random.default_rng(2).random((steps, 1, 6)) < 0.4)
    ref = snnkit.simulate(net, x, backend="fixed", record=("v", "i", "theta", "weights"))
    spiked = 0
    for t in range(steps):
        await run_one_step_with_inputs(bus, np.flatnonzero(x[t, 0].numpy()))
        got = np.zeros(net.n_inputs + net.n_neurons, bool)
        for step, g in await drain(bus):
            assert step == t
            got[g] = True
        for pop in net.neuron_populations:
            off = net.offset(pop.name)
            assert np.array_equal(got[off:off + pop.size],
                                  ref.spikes[pop.name][t, 0].numpy()), (t, pop.name)
        spiked += int(got.sum())
        for core, rep in zip(part.cores, mi.reports):
            await bus.write(MultiReg.CORE_SEL, core.index)
            for name, idx in core.parts.items():
                off = core.net.offset(name)
                for f, var in ((StateField.V, "v"), (StateField.I, "i"),
                               (StateField.THETA, "theta")):
                    vals = [await bus.read(STATE + STATE_STRIDE * (off + j) + f, signed=True)
                            for j in range(idx.size)]
                    want = ref.states[name][var][t, 0, torch.as_tensor(idx)].tolist()
                    assert vals == want, (t, core.index, name, var)
            for li, (j, tgt, src) in enumerate(core.blocks):
                pr = core.net.projections[li]
                if pr.stdp is None:
                    continue
                s, n = src.size, tgt.size
                ws = [await bus.read(WEIGHT + rep.w_base[li] + a) for a in range(s * n)]
                w = np.array([(v & 0x7FFF_FFFF) - ((v & 0x4000_0000) << 1) for v in ws])
                want = ref.weight_trace[net.projections[j].name][t, 0].numpy()
                assert np.array_equal(w.reshape(s, n).T, want[np.ix_(tgt, src)]), \
                    (t, core.index, pr.name)
    assert spiked > 5
    assert await bus.read(Reg.STEP_COUNT) == steps


async def run_one_step_with_inputs(bus, inputs) -> None:
    """One RUN of one step: STEPS and RUN, the step's input words (whole-network indices)
    and its end marker, then wait for done (as the UART decoder does)."""
    await bus.write(Reg.STEPS, 1)
    await bus.write(Reg.CTRL, Ctrl.RUN)
    for g in inputs:
        await bus.write(Reg.IN_FIFO, int(g))
    await bus.write(Reg.IN_FIFO, FIFO_MARK)
    await wait_status(bus, Status.DONE, True)
