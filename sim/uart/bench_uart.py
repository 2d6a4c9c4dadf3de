"""cocotb bench of hdl/uart_rx.v + uart_tx.v against cocotbext-uart (the independent model).

Every test compares data: bytes sent by UartSource must come out of rx_data in order, bytes
pushed into the transmitter must be read back by UartSink in order.
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, RisingEdge, Timer
from cocotb.utils import get_sim_time
from cocotbext.uart import UartSink, UartSource

CLK_NS = 10


def baud(dut) -> int:
    return round(1e9 / (CLK_NS * int(dut.CLKS_PER_BIT.value)))


def bit_ns(dut) -> int:
    return CLK_NS * int(dut.CLKS_PER_BIT.value)


async def read_exact(sink, n: int, timeout_ns: int) -> bytes:
    """Gather exactly ``n`` bytes from a UartSink, or what came before ``timeout_ns``."""
    out = bytearray()
    end = get_sim_time("ns") + timeout_ns
    while len(out) < n and get_sim_time("ns") < end:
        await sink.wait(timeout=max(1, int(end - get_sim_time("ns"))), timeout_unit="ns")
        out += sink.read_nowait(min(n - len(out), sink.count()))
    return bytes(out)


async def setup(dut):
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rx.value = 1
    dut.tx_valid.value = 0
    dut.tx_data.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 5)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)


async def collect_rx(dut, n: int, out: list, errors: list):
    while len(out) < n:
        await RisingEdge(dut.clk)
        if int(dut.rx_valid.value):
            out.append(int(dut.rx_data.value))
        if int(dut.event_frame_err.value):
            errors.append(len(out))


@cocotb.test()
async def rx_receives_random_bytes(dut):
    await setup(dut)
    data = random.Random(1).randbytes(300) + b"\x00\xff\x55\xaa"
    src = UartSource(dut.rx, baud=baud(dut))
    got, errors = [], []
    task = cocotb.start_soon(collect_rx(dut, len(data), got, errors))
    await src.write(data)
    await task
    assert bytes(got) == data
    assert errors == []


@cocotb.test()
async def rx_drops_byte_with_low_stop_bit_and_recovers(dut):
    await setup(dut)
    bit_ns = CLK_NS * int(dut.CLKS_PER_BIT.value)
    for b in [0] + [(0x5A >> k) & 1 for k in range(8)] + [0]:  # start, data, low stop bit
        dut.rx.value = b
        await Timer(bit_ns, unit="ns")
    dut.rx.value = 1
    got, errors = [], []
    task = cocotb.start_soon(collect_rx(dut, 3, got, errors))
    await Timer(3 * bit_ns, unit="ns")
    src = UartSource(dut.rx, baud=baud(dut))
    await src.write(b"\x12\x34\x56")
    await task
    assert bytes(got) == b"\x12\x34\x56"
    assert errors == [0]


@cocotb.test()
async def tx_sends_random_bytes_back_to_back(dut):
    await setup(dut)
    sink = UartSink(dut.tx, baud=baud(dut))
    data = random.Random(2).randbytes(200)
    start = get_sim_time("ns")
    for b in data:
        dut.tx_data.value = b
        dut.tx_valid.value = 1
        await RisingEdge(dut.clk)
        while not int(dut.tx_ready.value):
            await RisingEdge(dut.clk)
    dut.tx_valid.value = 0
    got = await read_exact(sink, len(data), 12 * len(data) * bit_ns(dut))
    assert bytes(got) == data
    elapsed = get_sim_time("ns") - start
    assert elapsed <= (10 * len(data) + 12) * bit_ns(dut)  # no gaps between bytes


@cocotb.test()
async def loopback_through_both(dut):
    await setup(dut)
    src = UartSource(dut.rx, baud=baud(dut))
    sink = UartSink(dut.tx, baud=baud(dut))
    data = random.Random(3).randbytes(100)

    async def echo():  # received bytes go to a queue, the transmitter drains it
        fifo = Queue()

        async def receive():
            while True:
                await RisingEdge(dut.clk)
                if int(dut.rx_valid.value):
                    fifo.put_nowait(int(dut.rx_data.value))

        cocotb.start_soon(receive())
        while True:
            dut.tx_data.value = await fifo.get()
            dut.tx_valid.value = 1
            await RisingEdge(dut.clk)
            while not int(dut.tx_ready.value):
                await RisingEdge(dut.clk)
            dut.tx_valid.value = 0

    cocotb.start_soon(echo())
    await src.write(data)
    got = await read_exact(sink, len(data), 12 * len(data) * bit_ns(dut))
    assert bytes(got) == data
