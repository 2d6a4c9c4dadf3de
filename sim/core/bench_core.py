"""cocotb bench of the core (hdl/snn_core.v) through its host bus (docs/hardware.md; the
addresses and bits: snnkit.memory_map, from which the RTL's hdl/snn_map.vh is generated).

Pieces: a bus driver (``Bus``), a monitor of the output FIFO (``drain``), the reference model
(snnkit.simulate(..., backend="fixed"), never a re-implementation) and the checks in each
test. Every test compares data read back over the bus.
"""

import cocotb
import numpy as np
import torch
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

import snnkit
from snnkit.compiler import POP_FIELDS, HardwareConfig, build_images
from snnkit.memory_map import (
    FIFO_MARK,
    PLASTIC,
    POP_TABLE,
    PROJ_TABLE,
    STATE_STRIDE,
    TABLE_STRIDE,
    CoreRegion,
    Ctrl,
    PopField,
    ProjField,
    Reg,
    StateField,
    Status,
    core_address,
)

STATE, WEIGHT = core_address(CoreRegion.STATE), core_address(CoreRegion.WEIGHT)
BIAS = core_address(CoreRegion.BIAS)


def state_addr(g: int, f: int) -> int:
    """Bus address of state word ``f`` (StateField) of global neuron ``g``."""
    return STATE + STATE_STRIDE * g + f


class Bus:
    """Host-bus master: one request at a time, reads wait for host_rvalid."""

    def __init__(self, dut):
        self.dut = dut
        dut.host_req.value = 0
        dut.host_we.value = 0
        dut.host_addr.value = 0
        dut.host_wdata.value = 0

    async def _request(self, addr, we, data=0):
        """Drive a request until an edge accepts it (host_ready sampled before the edge)."""
        d = self.dut
        d.host_req.value, d.host_we.value = 1, we
        d.host_addr.value, d.host_wdata.value = int(addr), int(data) & 0xFFFF_FFFF
        while True:
            await ReadOnly()
            ready = int(d.host_ready.value)
            await RisingEdge(d.clk)
            if ready:
                break
        await FallingEdge(d.clk)  # accepted once: drop the request before the next edge
        d.host_req.value = 0

    async def write(self, addr, data):
        await self._request(addr, 1, data)

    async def read(self, addr, signed=False):
        await self._request(addr, 0)
        while True:
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if int(self.dut.host_rvalid.value):
                break
        v = self.dut.host_rdata.value
        await FallingEdge(self.dut.clk)
        return v.to_signed() if signed else int(v)


async def start(dut) -> Bus:
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    bus = Bus(dut)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    return bus


def config(dut) -> HardwareConfig:
    g = {k: int(getattr(dut, k).value) for k in ("N_MAX", "SYN_MAX", "P_MAX", "PR_MAX",
                                                  "D_MAX", "TR_MAX", "W_BITS", "S_BITS",
                                                  "D_BITS", "T_BITS", "FRAC", "T_FRAC",
                                                  "STDP_FRAC", "IN_DEPTH", "OUT_DEPTH")}
    return HardwareConfig(n_max=g["N_MAX"], syn_max=g["SYN_MAX"], p_max=g["P_MAX"],
                          pr_max=g["PR_MAX"], d_max=g["D_MAX"], tr_max=g["TR_MAX"],
                          weight_bits=g["W_BITS"], state_bits=g["S_BITS"],
                          decay_bits=g["D_BITS"], trace_bits=g["T_BITS"], frac_bits=g["FRAC"],
                          trace_frac_bits=g["T_FRAC"], stdp_frac_bits=g["STDP_FRAC"],
                          in_depth=g["IN_DEPTH"], out_depth=g["OUT_DEPTH"])


async def load(bus, images: dict) -> None:
    """Write a compiled network's tables and weights over the bus, then reset the state."""
    words = [int(x, 16) for x in images["pop.hex"].split()]
    for k, w in enumerate(words):
        await bus.write(POP_TABLE + k, w)
    for k, w in enumerate(int(x, 16) for x in images["proj.hex"].split()):
        await bus.write(PROJ_TABLE + k, w)
    n_pop, n_proj, n_w = (int(x, 16) for x in images["regs.hex"].split())
    wb = int(bus.dut.W_BITS.value)
    for k, w in enumerate(int(x, 16) for x in images["weights.hex"].split()[:n_w]):
        await bus.write(WEIGHT + k, (w >> wb) * PLASTIC | (w & ((1 << wb) - 1)))
    for g, b in enumerate(int(x, 16) for x in images["bias.hex"].split()):
        await bus.write(BIAS + g, b)
    await bus.write(Reg.N_POP, n_pop)
    await bus.write(Reg.N_PROJ, n_proj)
    await bus.write(Reg.CTRL, Ctrl.RESET_STATE)
    await wait_status(bus, Status.BUSY, False)


async def start_loaded(dut, seed: int):
    """Reset the core and load ``small_net(seed)``; return (bus, net, compile report)."""
    bus = await start(dut)
    net = small_net(seed)
    report, images = build_images(net, config(dut))
    await load(bus, images)
    return bus, net, report


async def wait_status(bus, bit: int, value: bool) -> None:
    """Poll STATUS over the bus until ``bit`` (Status) is ``value``."""
    status = await bus.read(Reg.STATUS)
    while bool(status & bit) != value:
        status = await bus.read(Reg.STATUS)


async def run_one_step(bus) -> None:
    """Start one time step on the inputs written so far and wait until it is done."""
    await bus.write(Reg.STEPS, 1)
    await bus.write(Reg.CTRL, Ctrl.RUN)
    await wait_status(bus, Status.DONE, True)


async def drain(bus) -> list[tuple[int, int]]:
    """Pop the output FIFO until empty: [(step mod 2^15, global index)]."""
    out = []
    while True:
        w = await bus.read(Reg.OUT_FIFO)
        if not w & FIFO_MARK:
            return out
        out.append(((w >> 16) & 0x7FFF, w & 0xFFFF))


def small_net(seed: int) -> snnkit.Network:
    rng = np.random.default_rng(seed)
    q = snnkit.Quantization(weight_bits=8, state_bits=16, frac_bits=6, decay_bits=12)
    net = snnkit.Network(quantization=q)
    net.add_input("in", 5)
    net.add_population("a", 6, snnkit.CubaLIF(alpha=0.5, beta=0.875, threshold=0.75,
                                               refractory=1,
                                               bias=rng.integers(-8, 9, 6) / 64))
    net.add_population("b", 4, snnkit.LIF(beta=0.75, threshold=0.5, reset="value"))
    net.connect("in", "a", rng.integers(-40, 100, (6, 5)) / 64)
    net.connect("a", "b", rng.integers(-40, 100, (4, 6)) / 64, delay=1)
    net.connect("b", "a", rng.integers(-60, 60, (6, 4)) / 64, delay=2,
                stdp=snnkit.STDP(a_plus=0.05, a_minus=0.04, w_min=-1.0, w_max=1.0))
    return net


@cocotb.test()
async def identify_block_reports_the_parameters(dut):
    bus = await start(dut)
    c = config(dut)
    assert await bus.read(Reg.ID) == 0x534E4E31
    assert await bus.read(Reg.N_MAX) == c.n_max and await bus.read(Reg.SYN_MAX) == c.syn_max
    assert await bus.read(Reg.SIZES) == (c.p_max << 24) | (c.pr_max << 16) | (c.d_max << 8) | 1
    assert await bus.read(Reg.WIDTHS) == (c.weight_bits << 24) | (c.state_bits << 16) | (
        c.decay_bits << 8) | c.trace_bits
    assert await bus.read(Reg.TR_MAX) == c.tr_max
    assert await bus.read(Reg.FIFOS) == (c.in_depth << 16) | c.out_depth


@cocotb.test()
async def registers_and_tables_read_back(dut):
    bus = await start(dut)
    for addr, value in ((Reg.STEPS, 12345), (Reg.LEARN, 0), (Reg.LEARN, 1), (Reg.N_POP, 3),
                        (POP_TABLE + TABLE_STRIDE + PopField.THRESHOLD, 0xFFFF_FF80),
                        (PROJ_TABLE + TABLE_STRIDE * 2 + ProjField.A_PLUS, 0xABCDE)):
        await bus.write(addr, value)
        assert await bus.read(addr) == value, hex(addr)


@cocotb.test()
async def debug_state_and_weights_read_back_sign_extended(dut):
    bus = await start(dut)
    c = config(dut)
    lo = -(1 << (c.state_bits - 1))
    for g, (v, i, ref, th) in enumerate([(lo, 17, 3, 99), (-1, lo, 0, 0), (1234, -5, 7, -2)]):
        for f, x in enumerate((v, i, ref, th)):
            await bus.write(state_addr(g, f), x)
        got = [await bus.read(state_addr(g, f), signed=True) for f in StateField]
        assert got == [v, i, ref, th]
    wlo = -(1 << (c.weight_bits - 1))
    for a, (plastic, w) in enumerate([(1, wlo), (0, -1), (1, 5), (0, -wlo - 1)]):
        await bus.write(WEIGHT + a, plastic * PLASTIC | (w & 0x7FFF_FFFF))
        word = await bus.read(WEIGHT + a)
        assert bool(word & PLASTIC) == plastic
        assert (word & 0x7FFF_FFFF) - ((word & 0x4000_0000) << 1) == w


@cocotb.test()
async def a_network_loaded_over_the_bus_matches_the_fixed_simulator(dut):
    """Spikes from the output FIFO, v and i by debug reads and the plastic weights, after
    every step, equal snnkit's fixed-point simulator."""
    bus, net, report = await start_loaded(dut, 3)
    steps = 24
    x = torch.from_numpy(np.random.default_rng(4).random((steps, 1, net.n_inputs)) < 0.5)
    ref = snnkit.simulate(net, x, backend="fixed", record=("v", "i", "weights"))
    n = net.n_inputs + net.n_neurons
    pr = net.projections[2]
    base = report.w_base[2]
    spiked = 0
    for t in range(steps):
        for k in np.flatnonzero(x[t, 0].numpy()):
            await bus.write(Reg.IN_FIFO, int(k))
        await bus.write(Reg.IN_FIFO, FIFO_MARK)
        await run_one_step(bus)
        got = np.zeros(n, bool)
        for step, g in await drain(bus):
            assert step == t
            got[g] = True
        for pop in net.neuron_populations:
            off = net.offset(pop.name)
            assert np.array_equal(got[off:off + pop.size],
                                  ref.spikes[pop.name][t, 0].numpy()), (t, pop.name)
            for f, var in ((StateField.V, "v"), (StateField.I, "i")):
                vals = [await bus.read(state_addr(off + j, f), signed=True)
                        for j in range(pop.size)]
                assert vals == ref.states[pop.name][var][t, 0].tolist(), (t, pop.name, var)
        s, tt = pr.weight.shape[1], pr.weight.shape[0]
        words = [await bus.read(WEIGHT + base + k) for k in range(s * tt)]
        w = np.array([(x & 0x7FFF_FFFF) - ((x & 0x4000_0000) << 1) for x in words])
        assert np.array_equal(w.reshape(s, tt).T, ref.weight_trace[pr.name][t, 0].numpy()), t
        spiked += int(got.sum())
    assert spiked > 10
    assert await bus.read(Reg.STEP_COUNT) == steps
    assert await bus.read(Reg.SYN_EVENTS) > 0 and await bus.read(Reg.CYCLES_LO) > 0


@cocotb.test()
async def an_input_index_that_is_no_input_sets_the_error_flag(dut):
    bus, net, _ = await start_loaded(dut, 1)
    assert not (await bus.read(Reg.STATUS)) & Status.INPUT_ERROR
    await bus.write(Reg.IN_FIFO, net.offset("a"))  # a neuron, not an input
    await bus.write(Reg.IN_FIFO, FIFO_MARK)
    await run_one_step(bus)
    assert (await bus.read(Reg.STATUS)) & Status.INPUT_ERROR
    assert POP_FIELDS[0] == "offset"


@cocotb.test()
async def a_population_moved_without_a_reset_takes_its_inputs_at_the_new_offset(dut):
    # the core finds an input's population in a map it rebuilds before the first step after
    # an OFFSET / SIZE / N_POP write (here no RESET_STATE in between)
    bus, net, _ = await start_loaded(dut, 1)
    free = net.n_inputs + net.n_neurons  # past every population
    assert free + net.n_inputs <= int(dut.N_MAX.value) and POP_FIELDS[0] == "offset"
    assert net.populations[0].name == "in" and net.offset("in") == 0
    await bus.write(POP_TABLE + PopField.OFFSET, free)  # population 0 (the inputs) moves there
    await bus.write(Reg.IN_FIFO, free + 1)
    await bus.write(Reg.IN_FIFO, FIFO_MARK)
    await run_one_step(bus)
    assert not (await bus.read(Reg.STATUS)) & Status.INPUT_ERROR  # an input at its new index
    await bus.write(Reg.IN_FIFO, 1)
    await bus.write(Reg.IN_FIFO, FIFO_MARK)
    await run_one_step(bus)
    # the old index lies in no population now
    assert (await bus.read(Reg.STATUS)) & Status.INPUT_ERROR


@cocotb.test()
async def a_repeated_input_index_counts_once_and_sets_the_error_flag(dut):
    bus, net, _ = await start_loaded(dut, 2)
    for word in (1, 1, 3, FIFO_MARK):
        await bus.write(Reg.IN_FIFO, word)
    await run_one_step(bus)
    assert (await bus.read(Reg.STATUS)) & Status.INPUT_ERROR
    x = torch.zeros(1, 1, net.n_inputs, dtype=torch.bool)
    x[0, 0, [1, 3]] = True
    ref = snnkit.simulate(net, x, backend="fixed", record=("i",))
    off = net.offset("a")
    got = [await bus.read(state_addr(off + j, StateField.I), signed=True) for j in range(6)]
    assert got == ref.states["a"]["i"][0, 0].tolist()
