"""cocotb bench of the whole board at gate level: the real driver, snnkit.Device, deploys and
runs a network over the simulated UART pins of host_top's iCE40 netlist (tests/test_gate_level.py
synthesises it), with cocotbext-uart as the serial line. The board must answer exactly what
the fixed-point simulator computes: spikes, and the weights learned on chip.

Device is blocking code: it runs in a cocotb bridge thread, and its port (``SimPort``) resumes
the simulation whenever it waits for bytes; the port keeps the simulated time, so the link's
timeouts are in the board's time, not the host's.
"""

import cocotb
import numpy as np
import torch
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles
from cocotbext.uart import UartSink, UartSource

import snnkit
from snnkit.device import Device
from snnkit.quantize import encode
from tests.conftest import make_net

CLK_NS = 10
WAIT_CYCLES = 400  # simulated clocks per read of an empty port


class SimPort:
    """The part of a pyserial port that Device uses, on the simulated pins, and the clock
    the link reads (simulated seconds: only this port's waits advance the simulation)."""

    is_open = True

    def __init__(self, dut, source: UartSource, sink: UartSink):
        self.dut, self.source, self.sink = dut, source, sink
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        cycles = max(1, round(s / (CLK_NS * 1e-9)))
        resume(self._wait)(cycles)

    @property
    def in_waiting(self) -> int:
        return self.sink.count()

    def write(self, data) -> int:
        resume(self.source.write)(bytes(data))
        return len(data)

    def read(self, n: int = 1) -> bytes:
        if not self.sink.count():
            resume(self._wait)(WAIT_CYCLES)
        return bytes(self.sink.read_nowait(min(n, self.sink.count())))

    async def _wait(self, cycles: int):
        await ClockCycles(self.dut.clk, cycles)
        self.now += cycles * CLK_NS * 1e-9


@cocotb.test()
async def device_deploys_runs_and_learns_as_the_fixed_point_simulator(dut):
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    baud = round(1e9 / (CLK_NS * int(dut.CLKS_PER_BIT.value)))
    source = UartSource(dut.uart_rx, baud=baud, bits=8, stop_bits=1)
    sink = UartSink(dut.uart_tx, baud=baud, bits=8, stop_bits=1)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 8)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 8)

    net = snnkit.quantize(make_net(3, stdp=True, per_neuron=False))[0]  # what the board runs
    x = np.random.default_rng(4).random((16, 2, 12)) < 0.3
    ref = snnkit.simulate(net, x, backend="fixed")

    def on_the_board():
        with Device(SimPort(dut, source, sink), timeout=1.0, retries=3) as dev:
            dev.load(net)  # verified by read-back
            res = dev.run(x)
            return res, dev.read_weights(), dev.read_counters()

    res, after, counters = await bridge(on_the_board)()
    for k in ref.spikes:
        assert torch.equal(res.spikes[k], ref.spikes[k]), k
    assert sum(int(s.sum()) for s in ref.spikes.values()) > 20
    assert torch.equal(res.weights["in->a"], ref.weights["in->a"])
    assert torch.equal(after["in->a"], ref.weights["in->a"][-1])
    loaded = encode(net.projections[0].weight, net.quantization.frac_bits)  # in LSBs
    assert not np.array_equal(after["in->a"].numpy(), loaded)  # it did learn on chip
    assert counters["steps"] == x.shape[0] and counters["crc_errors"] == 0
