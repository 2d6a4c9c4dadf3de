"""cocotb bench of the UART command decoder (hdl/host_decoder.v and its blocks) behind the RTL
UART, driven by cocotbext-uart.

The host side encodes and parses frames with snnkit.protocol; a behavioural core model
answers the host bus (random ready, 2-cycle read latency, FIFOs, a fake step rule). Every
test compares data: what reached the model's memory, what came back, which events.
"""

import random

import cocotb
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time
from cocotbext.uart import UartSink, UartSource

from snnkit import protocol as p
from snnkit.memory_map import FIFO_MARK, IDENT_WORDS, LINK_BASE, Ctrl, Reg, Status

CLK_NS = 10
SIZES = {0: 11, 1: 11, 2: 128, 3: 64, 4: 256, 5: 512, 6: 64, 7: 4, 8: 4, 9: 4,
         10: 0, 11: 0, 12: 0, 13: 64}  # decoder_tb.v (10-12: the multi-core board's)
BASES = {int(r): a for r, a in LINK_BASE.items()}  # where the decoder puts each region
MAX_PAYLOAD, MAX_EVENTS = 256, 16


def fake_step(step: int, inputs: list[int]) -> list[int]:
    """The model core's rule: two events per input index, at most MAX_EVENTS."""
    ev = []
    for i in inputs:
        ev += [(i * 5 + step) % 40, (i * 3 + step) % 40 + 40]
    return ev[:MAX_EVENTS]


class CoreModel:
    """Host-bus responder: memory, CTRL/STATUS/FIFOs of docs/hardware.md, a fake step."""

    def __init__(self, dut, seed=0):
        self.dut, self.rng = dut, random.Random(seed)
        self.mem = {a: 0x1000 + a for a in range(IDENT_WORDS)}  # identify block
        self.in_q, self.out_q, self.steps_run, self.step = [], [], 0, 0
        self.busy, self.done, self.resets, self.stall = 0, 0, 0, False
        self.hang_at = None  # step that never finishes

    def write(self, addr, data):
        if addr == Reg.CTRL:
            if data & Ctrl.RUN:
                self.busy, self.done = -1, 0  # waiting for inputs
            if data & Ctrl.RESET_STATE:
                self.busy, self.resets, self.step = 20, self.resets + 1, 0
        elif addr == Reg.IN_FIFO:
            if data & FIFO_MARK:
                ev = fake_step(self.step, self.in_q)
                self.out_q += [FIFO_MARK | (self.step << 16) | e for e in ev]
                self.in_q, self.busy = [], (-1 if self.step == self.hang_at else 7)
                self.step += 1
                self.steps_run += 1
            else:
                self.in_q.append(data & 0xFFFF)
        else:
            self.mem[addr] = data

    def read(self, addr):
        if addr == Reg.STATUS:
            return (Status.BUSY if self.busy != 0 else 0) | (Status.DONE if self.done else 0)
        if addr == Reg.OUT_LEVEL:
            return len(self.out_q)
        if addr == Reg.OUT_FIFO:
            return self.out_q.pop(0) if self.out_q else 0
        return self.mem.get(addr, 0)

    async def run(self):
        dut = self.dut
        req = we = addr = wdata = 0
        ready, pipe = 1, [None, None]
        while True:
            await RisingEdge(dut.clk)
            if req and ready:
                if we:
                    self.write(addr, wdata)
                else:
                    pipe[0] = self.read(addr)
            if self.busy > 0:
                self.busy -= 1
                if self.busy == 0:
                    self.done = 1
            out = pipe.pop()
            pipe.insert(0, None)
            dut.host_rvalid.value = out is not None
            dut.host_rdata.value = out or 0
            ready = 0 if self.stall else int(self.rng.random() < 0.7)
            dut.host_ready.value = ready
            await ReadOnly()
            req, we = int(dut.host_req.value), int(dut.host_we.value)
            addr, wdata = int(dut.host_addr.value), int(dut.host_wdata.value)


class Host:
    """The host end of the link: frames out through UartSource, frames in through UartSink."""

    def __init__(self, dut):
        baud = round(1e9 / (CLK_NS * int(dut.CLKS_PER_BIT.value)))
        self.bit_ns = CLK_NS * int(dut.CLKS_PER_BIT.value)
        self.src, self.sink = UartSource(dut.rx, baud=baud), UartSink(dut.tx, baud=baud)
        self.parser, self.frames, self.seq = p.FrameParser(), Queue(), 0
        cocotb.start_soon(self._receive())

    async def _receive(self):
        while True:
            await self.sink.wait()
            for f in self.parser.feed(bytes(self.sink.read_nowait())):
                if isinstance(f, p.Frame):
                    self.frames.put_nowait(f)

    async def response(self, timeout_bytes=2000) -> p.Frame | None:
        end = get_sim_time("ns") + timeout_bytes * 10 * self.bit_ns
        while self.frames.empty() and get_sim_time("ns") < end:
            await Timer(10 * self.bit_ns, unit="ns")
        return None if self.frames.empty() else self.frames.get_nowait()

    async def send_raw(self, data: bytes):
        await self.src.write(data)
        await self.src.wait()

    async def call(self, op, payload=b"", seq=None) -> p.Frame:
        self.seq = (self.seq + 1) & 0xFF if seq is None else seq
        await self.send_raw(p.encode_frame(op, self.seq, payload))
        f = await self.response()
        assert f is not None, f"no response to op 0x{op:02x}"
        assert f.seq == self.seq
        return f


async def setup(dut):
    cocotb.start_soon(Clock(dut.clk, CLK_NS, unit="ns").start())
    dut.rx.value = 1
    dut.host_ready.value = 0
    dut.host_rvalid.value = 0
    dut.host_rdata.value = 0
    dut.rst.value = 1
    await ClockCycles(dut.clk, 5)
    dut.rst.value = 0
    model = CoreModel(dut)
    cocotb.start_soon(model.run())
    return model, Host(dut)


def expect_ack(f, op):
    assert f.op == op | 0x80, f"expected ACK of 0x{op:02x}, got {f}"
    return f.payload


def expect_nack(f, op, code):
    assert f.op == p.Op.NACK, f"expected NACK, got {f}"
    assert (f.payload[0], f.payload[1]) == (op, code)


@cocotb.test()
async def identify_reports_regions_and_core_block(dut):
    model, host = await setup(dut)
    ident = p.parse_identify(expect_ack(await host.call(p.Op.IDENTIFY), p.Op.IDENTIFY))
    assert ident.max_payload == MAX_PAYLOAD and ident.max_events == MAX_EVENTS
    assert ident.regions[:14] == tuple(SIZES[r] for r in range(14))
    assert ident.writable == 0x223E  # CTRL, POP, PROJ, STATE, WEIGHT, FIFO, BIAS
    assert ident.core == tuple(model.mem[a] for a in range(11))


@cocotb.test()
async def write_then_read_back_every_width(dut):
    model, host = await setup(dut)
    rng = random.Random(5)
    w = p.Region.WEIGHT
    vals = [rng.randrange(-128, 128) for _ in range(200)]
    expect_ack(await host.call(p.Op.WRITE | w, p.write_payload(17, 1, vals, flag=True)),
               p.Op.WRITE | w)
    for k, v in enumerate(vals):  # widened: bit 31 = flag, sign-extended below
        assert model.mem[BASES[w] + 17 + k] == (1 << 31) | (v & 0x7FFF_FFFF)
    pop = p.Region.POP
    words = [rng.randrange(1 << 32) for _ in range(40)]
    expect_ack(await host.call(p.Op.WRITE | pop, p.write_payload(3, 4, words)), p.Op.WRITE | pop)
    halves = [rng.randrange(-(1 << 15), 1 << 15) for _ in range(30)]
    expect_ack(await host.call(p.Op.WRITE | pop, p.write_payload(60, 2, halves)),
               p.Op.WRITE | pop)
    got = expect_ack(await host.call(p.Op.READ | pop, p.read_payload(3, 40, 4)), p.Op.READ | pop)
    assert p.unpack_elements(got, 4, signed=False) == words
    got = expect_ack(await host.call(p.Op.READ | pop, p.read_payload(60, 30, 2)), p.Op.READ | pop)
    assert p.unpack_elements(got, 2, signed=True) == halves
    got = expect_ack(await host.call(p.Op.READ | w, p.read_payload(17, 200, 1)), p.Op.READ | w)
    assert p.unpack_elements(got, 1, signed=True) == vals


@cocotb.test()
async def bad_frames_are_refused_and_change_nothing(dut):
    model, host = await setup(dut)
    w, ident = p.Region.WEIGHT, p.Region.IDENT
    before = dict(model.mem)
    frame = bytearray(p.encode_frame(p.Op.WRITE | w, 9, p.write_payload(0, 4, [1, 2, 3])))
    frame[9] ^= 0x10
    await host.send_raw(bytes(frame))
    expect_nack(await host.response(), p.Op.WRITE | w, p.ErrorCode.BAD_CRC)
    cases = [
        (0x55, b"", p.ErrorCode.BAD_OPCODE),
        (p.Op.WRITE | w, p.write_payload(510, 1, [1, 2, 3]), p.ErrorCode.BAD_ADDRESS),
        (p.Op.WRITE | 12, p.write_payload(0, 1, [1]), p.ErrorCode.BAD_ADDRESS),
        (p.Op.WRITE | ident, p.write_payload(0, 4, [1]), p.ErrorCode.READ_ONLY),
        (p.Op.WRITE | p.Region.LINK, p.write_payload(0, 4, [1]), p.ErrorCode.READ_ONLY),
        (p.Op.WRITE | w, bytes([0, 0, 0, 0, 3, 1, 2, 3]), p.ErrorCode.BAD_WIDTH),
        (p.Op.WRITE | w, p.write_payload(0, 4, [1]) + b"\x00", p.ErrorCode.BAD_LENGTH),
        (p.Op.READ | w, p.read_payload(0, 65, 4), p.ErrorCode.BAD_LENGTH),
        (p.Op.READ | w, p.read_payload(500, 13, 1), p.ErrorCode.BAD_ADDRESS),
        (p.Op.READ | w, p.read_payload(0, 1, 4) + b"\x00", p.ErrorCode.BAD_LENGTH),
        (p.Op.RUN, p.encode_events([[1, 2]])[:-1], p.ErrorCode.BAD_LENGTH),
        (p.Op.RUN, p.encode_events([[1]]) + b"\x00\x00", p.ErrorCode.BAD_LENGTH),
    ]
    for op, payload, code in cases:
        expect_nack(await host.call(op, payload), op, code)
    await host.send_raw(p.encode_frame(p.Op.WRITE | w, 1, bytes(MAX_PAYLOAD + 1)))
    expect_nack(await host.response(), p.Op.WRITE | w, p.ErrorCode.BAD_LENGTH)
    assert model.mem == before and model.steps_run == 0
    link = expect_ack(await host.call(p.Op.READ | p.Region.LINK, p.read_payload(0, 4, 4)),
                      p.Op.READ | p.Region.LINK)
    frames, crc_errors, nacks, replays = p.unpack_elements(link, 4, signed=False)
    assert (crc_errors, nacks, replays) == (1, len(cases) + 2, 0)
    assert frames == len(cases) + 1  # the READ of the counters counts itself


@cocotb.test()
async def run_streams_events_and_a_repeated_frame_is_replayed(dut):
    model, host = await setup(dut)
    rng = random.Random(7)
    inputs = [sorted(rng.sample(range(60), rng.randrange(0, 5))) for _ in range(6)]
    f = await host.call(p.Op.RUN, p.encode_events(inputs), seq=42)
    events, abort = p.parse_stream(expect_ack(f, p.Op.RUN))
    assert events == [fake_step(s, x) for s, x in enumerate(inputs)] and abort is None
    assert model.steps_run == 6
    again = await host.call(p.Op.RUN, p.encode_events(inputs), seq=42)
    assert again == f and model.steps_run == 6  # same response, not run twice
    await host.call(p.Op.RESET)
    assert model.resets == 1 and model.step == 0
    link = expect_ack(await host.call(p.Op.READ | p.Region.LINK, p.read_payload(3, 1, 4)),
                      p.Op.READ | p.Region.LINK)
    assert p.unpack_elements(link, 4, signed=False) == [1]


@cocotb.test()
async def run_stops_when_the_response_buffer_is_full(dut):
    _, host = await setup(dut)
    inputs = [list(range(8 * s, 8 * s + 8)) for s in range(10)]  # 16 events per step
    first, _ = p.parse_stream(expect_ack(await host.call(p.Op.RUN, p.encode_events(inputs)),
                                         p.Op.RUN))
    room = (MAX_PAYLOAD - 4) // (2 + 2 * MAX_EVENTS)  # steps that fit with the end marker
    assert len(first) == room
    rest, _ = p.parse_stream(expect_ack(await host.call(p.Op.RUN,
                                                        p.encode_events(inputs[room:])),
                                        p.Op.RUN))
    assert first + rest == [fake_step(s, x) for s, x in enumerate(inputs)]


@cocotb.test()
async def run_that_hangs_ends_its_stream_with_abort_and_is_not_rerun(dut):
    model, host = await setup(dut)
    model.hang_at = 2  # the model never finishes step 2
    inputs = [[1], [2], [3], [4]]
    f = await host.call(p.Op.RUN, p.encode_events(inputs), seq=5)
    events, abort = p.parse_stream(expect_ack(f, p.Op.RUN))
    assert events == [fake_step(s, x) for s, x in enumerate(inputs[:2])]
    assert abort == p.ErrorCode.RUN_TIMEOUT
    runs = model.steps_run
    assert await host.call(p.Op.RUN, p.encode_events(inputs), seq=5) == f
    assert model.steps_run == runs


@cocotb.test()
async def bus_timeout_gives_nack_not_a_hang(dut):
    model, host = await setup(dut)
    model.stall = True
    op = p.Op.WRITE | p.Region.POP
    expect_nack(await host.call(op, p.write_payload(0, 4, [7])), op, p.ErrorCode.BUS_TIMEOUT)
    model.stall = False
    expect_ack(await host.call(op, p.write_payload(0, 4, [7])), op)
    assert model.mem[BASES[2]] == 7


@cocotb.test()
async def random_bytes_then_a_valid_frame_is_accepted(dut):
    model, host = await setup(dut)
    rng = random.Random(11)
    for trial in range(4):
        junk = bytes(rng.choice([0xA5, rng.randrange(256)]) for _ in range(rng.randrange(300)))
        await host.send_raw(junk)
        await Timer(45 * host.bit_ns * 8, unit="ns")  # longer than IDLE_CLKS: partial frames drop
        while not host.frames.empty():  # NACKs for garbage that looked like frames
            f = host.frames.get_nowait()
            assert f.op == p.Op.NACK
        vals = [rng.randrange(1 << 32) for _ in range(5)]
        op = p.Op.WRITE | p.Region.STATE
        expect_ack(await host.call(op, p.write_payload(trial, 4, vals)), op)
        assert [model.mem[BASES[4] + trial + k] for k in range(5)] == vals
