"""UART link utilisation of the protocol on the emulated board (docs/uart-protocol.md).

The emulated board clocks the RTL only while the link or the decoder is busy, and reports the
cycles of each client session; with ``CLKS_PER_BIT`` cycles per bit that is link time in
bit periods, board processing included, host software latency excluded. Utilisation =
payload bits / (bit periods), where a byte costs 10 bits (start + 8 + stop), so 100% means
the wire carries nothing but payload bytes back to back (the UART's byte rate, baud / 10).

Two workloads through the real driver (snnkit.Device over socket://):
- weight upload: 16,384 8-bit weights (payload = one byte per weight);
- spike stream: RUN frames of a 64 -> 192 LIF layer (payload = 2-byte address events, input
  and output; the link is used half-duplex by stop and wait).
Two board clocks: 12 cycles per bit (1 Mbaud at 12 MHz) and 16 (3 Mbaud at 48 MHz).
For contrast, NeuroCoreX's host sleeps 1 ms between bytes: about 1 KB/s, i.e. 1% of a
1 Mbaud link (100 KB/s). Usage: python benchmarks/uart_link.py
"""

from __future__ import annotations

import queue
import re

import numpy as np

import snnkit
from snnkit import protocol as p
from snnkit.compiler import HardwareConfig
from snnkit.device import Device
from snnkit.emulated_board import running


def upload_net() -> snnkit.Network:
    rng = np.random.default_rng(0)
    net = snnkit.Network(name="upload")
    net.add_input("in", 128)
    net.add_population("hid", 128, snnkit.LIF(beta=0.9))
    net.connect("in", "hid", rng.uniform(-1, 1, (128, 128)))
    return snnkit.quantize(net)[0]


def stream_net() -> snnkit.Network:
    rng = np.random.default_rng(1)
    net = snnkit.Network(name="stream")
    net.add_input("in", 64)
    net.add_population("out", 192, snnkit.LIF(beta=0.8, threshold=1.0))
    net.connect("in", "out", rng.uniform(-0.3, 0.3, (192, 64)))  # ~9% of neurons per step
    return snnkit.quantize(net)[0]


def session_cycles(log: queue.Queue) -> int:
    """Cycles the emulated board reports when the client closes (its log lines in ``log``)."""
    while True:
        try:
            line = log.get(timeout=60)
        except queue.Empty:
            raise RuntimeError("the emulated board gave no session report") from None
        m = re.match(r"client closed cycles (\d+)", line)
        if m:
            return int(m.group(1))


IDENT_BYTES = 2 * p.OVERHEAD + 8 + 16 * 4 + 11 * 4  # the IDENTIFY exchange of a session


def measure(config: HardwareConfig, cpb: int, work, after=None) -> tuple[int, float]:
    """Run ``work(dev)`` in one client session, then ``after(dev)`` in an unmeasured one;
    return (payload bytes, link bit periods of the first session)."""
    log = queue.Queue()
    with running(config, clks_per_bit=cpb, on_line=log.put) as (url, _proc):
        with Device(url, timeout=60) as dev:
            payload = work(dev)
        cycles = session_cycles(log)
        if after is not None:
            with Device(url, timeout=60) as dev:
                after(dev)
    return payload, cycles / cpb - 10 * IDENT_BYTES


def upload(dev: Device) -> int:
    net = upload_net()
    from snnkit.compiler import build_images

    report, images = build_images(net, dev.info.config)
    words = np.array([int(x, 16) for x in images["weights.hex"].split()][:report.weight_words])
    dev._write_weights(words, net.quantization.weight_bits)
    return len(words)


def stream(dev: Device, steps: int = 200) -> int:
    """Load (measured apart and subtracted), then stream ``steps`` steps."""
    net = stream_net()
    dev.load(net)
    x = np.random.default_rng(2).random((steps, 1, 64)) < 0.15
    res = dev.run(x)
    stream.counts = (int(x.sum()), int(res.spikes["out"].sum()), steps)
    return 2 * (stream.counts[0] + stream.counts[1])


def core_cycles(dev: Device) -> None:
    stream.core = dev.read_counters()["cycles"]


def load_only(dev: Device) -> int:
    dev.load(stream_net())
    return 0


def main() -> None:
    rows = []
    for cpb, label in ((12, "1 Mbaud @ 12 MHz"), (16, "3 Mbaud @ 48 MHz")):
        n, bits = measure(HardwareConfig.for_network(upload_net()), cpb, upload)
        rows.append(("weight upload", label, f"{n} 8-bit weights", n, bits))
        cfg = HardwareConfig.for_network(stream_net())
        _, load_bits = measure(cfg, cpb, load_only)
        n, bits = measure(cfg, cpb, stream, after=core_cycles)
        (ins, outs, steps), core = stream.counts, stream.core
        rows.append(("spike stream", label, (f"{steps} steps, {ins} in + {outs} out events, "
                     f"core {core / steps / cpb:.0f} bit periods/step"), n, bits - load_bits))
    print("| workload | board | what | payload bytes | link bit periods | utilisation |")
    print("|---|---|---|---|---|---|")
    for what, board, detail, n, bits in rows:
        print(f"| {what} | {board} | {detail} | {n:,} | {bits:,.0f} | {1000 * n / bits:.1f}% |")


if __name__ == "__main__":
    main()
