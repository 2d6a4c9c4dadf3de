"""The emulated board: Verilated ``hdl/host_top.v`` (core + UART + decoder) served on a
``socket://`` port or a pseudo-terminal, so :class:`snnkit.Device` talks to it exactly as
to an FPGA board (bit-level UART inside the simulation, a fast baud divider).

One build per hardware configuration and baud divider is cached (``$SNNKIT_CACHE``, default
``~/.cache/snnkit``) under a hash of the sources and parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

from . import hardware_files as hw
from .compiler import HardwareConfig
from .errors import DeviceError, SimulationError, count
from .rtl_backend import cache_dir, headers
from .tools import run_child, verilator_bin

HARNESS = hw.EMULATOR
SIM_CLKS_PER_BIT = 4  # baud divider inside the simulation
MIN_CLKS_PER_BIT = 4  # uart_rx.v samples each bit in its middle: fewer cycles have none
MAX_PAYLOAD = 4096  # frame buffer bytes of the emulated board (the iCE40 build has 1024)
PAYLOAD_LIMIT = 32768  # IDENTIFY reports the buffer in 2 bytes (host_decoder.v)


def step_room(config: HardwareConfig, cores: int = 1) -> int:
    """Bytes a RUN response must have free before the board starts a step: a step's spikes
    (2 + 2 * MAX_EVENTS, every neuron of every core) and the frame's end (host_cmd.v)."""
    return 2 + 2 * config.n_max * cores + 4


def payload_for(config: HardwareConfig, cores: int = 1) -> int:
    """The emulated board's frame buffer: MAX_PAYLOAD, or for a larger board the power of
    two that holds two steps (with less than one it never runs a step)."""
    need = 2 * step_room(config, cores)
    size = MAX_PAYLOAD
    while size < need and size < PAYLOAD_LIMIT:
        size *= 2
    return size


def _check_payload(config: HardwareConfig, cores: int, max_payload: int) -> None:
    room = step_room(config, cores)
    if max_payload < room:
        raise SimulationError(
            f"max_payload: {max_payload} bytes cannot hold one step of a board of "
            f"{config.n_max * cores} neurons ({room} bytes); leave it out (the board is sized "
            f"for it) or give at least {room}"
            + (f"; a board buffers at most {PAYLOAD_LIMIT} bytes: give it fewer neurons"
               if room > PAYLOAD_LIMIT else ""))


def sources(cores: int = 1) -> list[Path]:
    """Verilog of the board: the core's blocks, the UART, the decoder's blocks and host_top
    (with ``cores`` > 1: host_multi_top, the cores and their spike router; the header they
    include: rtl_backend.headers())."""
    tops = {"host_top.v", "host_multi_top.v"}
    top = "host_top.v" if cores == 1 else "host_multi_top.v"
    files = (sorted(hw.HDL.glob("snn_*.v")) + [hw.HDL / n for n in ("uart_rx.v", "uart_tx.v")]
             + [f for f in sorted(hw.HDL.glob("host_*.v")) if f.name not in tops]
             + [hw.HDL / top])
    hw.require(hw.HDL / "snn_core.v", *files, HARNESS)
    return files


def _key(config: HardwareConfig, clks_per_bit: int, max_payload: int = MAX_PAYLOAD,
         cores: int = 1) -> str:
    extra = f":{cores}" if cores > 1 else ""
    h = hashlib.sha256(f"{config.key()}:{clks_per_bit}:{max_payload}{extra}".encode())
    for f in sources(cores) + headers() + [HARNESS]:
        h.update(f.name.encode() + f.read_bytes())
    return "emulator-" + h.hexdigest()[:16]  # the prefix of existing cached builds


def build(config: HardwareConfig | None = None, clks_per_bit: int = SIM_CLKS_PER_BIT,
          cache=None, max_payload: int | None = None, cores: int = 1,
          progress: bool = False) -> Path:
    """Build (or find in the cache) the emulated board; return the executable.
    ``max_payload``: its frame buffer bytes (a power of two; default :func:`payload_for`).
    ``progress``: show a timer while building. An interrupted build leaves no process and no
    half-built folder behind.

    Raises
    ------
    SimulationError : verilator is missing or the build failed (its log is quoted),
        clks_per_bit is below MIN_CLKS_PER_BIT, or max_payload cannot hold a step
    """
    clks_per_bit = count("clks_per_bit", clks_per_bit, MIN_CLKS_PER_BIT,
                         " (the UART receiver samples mid-bit)")
    config = config or HardwareConfig()
    max_payload = payload_for(config, cores) if max_payload is None else max_payload
    _check_payload(config, cores, max_payload)
    final = cache_dir(cache) / _key(config, clks_per_bit, max_payload, cores)
    exe = final / "Vhost_top"
    if exe.exists():
        return exe
    tool = verilator_bin()
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=final.parent))
    params = dict(config.verilog_params(), CLKS_PER_BIT=clks_per_bit, MAX_PAYLOAD=max_payload)
    top = "host_top"
    if cores > 1:  # the same harness: the multi-core top under host_top's class name
        top = "host_multi_top"
        params.pop("DELAYED_RESET", None)  # not in the multi-core design: its IDENTIFY
        # lacks the bit, and the host lowers delayed resets to self-projections
        params["CORES"] = cores
    cmd = [tool, "--cc", "--exe", "--build", "-j", "2", "-O2", "-Wno-fatal",
           "-Wno-lint", "-Wno-style", "--top-module", top, "--prefix", "Vhost_top",
           "--Mdir", str(work),
           "-o", "Vhost_top", "-CFLAGS", f"-O1 -DCLKS_PER_BIT={clks_per_bit}",
           "--output-split", "0"]  # one C++ file: split builds trip over Verilator's PCH
    cmd += [f"-G{k}={v}" for k, v in params.items()] + [f"-I{hw.HDL}"]
    cmd += [str(f) for f in sources(cores)]
    cmd += [str(HARNESS)]
    try:
        proc = run_child(cmd, desc="building the emulated board" if progress else None)
    except BaseException:  # interrupted: nothing half-built stays in the cache
        shutil.rmtree(work, ignore_errors=True)
        raise
    if proc.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        raise SimulationError(f"emulated board build failed:\n"
                              f"{(proc.stdout + proc.stderr)[-3000:]}")
    try:
        work.rename(final)
    except OSError:  # a concurrent build won
        shutil.rmtree(work, ignore_errors=True)
    return exe


def ipv4(host: str) -> str:
    """The IPv4 address the emulator binds for ``host`` (it parses no name, and serves IPv4
    only); DeviceError when there is none."""
    if ":" in host:
        raise DeviceError(f"the emulated board serves IPv4 only, got {host!r} (e.g. "
                          f"127.0.0.1, or 0.0.0.0 for every interface)")
    try:
        return socket.gethostbyname(host)
    except (OSError, UnicodeError) as e:
        raise DeviceError(f"no IPv4 address for host {host!r} ({e})") from None


def _launch(exe: Path, port: int | None, pty: bool, host: str):
    host = host if pty else ipv4(host)
    args = [str(exe)] + (["--pty"] if pty else ["--port", str(port or 0), "--host", host])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, bufsize=1)
    line = proc.stdout.readline()
    m = re.match(r"serving (\S+)", line)
    if not m:
        proc.kill()
        raise DeviceError(f"the emulated board did not start: {line.strip() or 'no output'}")
    return proc, m.group(1)


@contextlib.contextmanager
def running(config: HardwareConfig | None = None, *, pty: bool = False, port: int = 0,
            host: str = "127.0.0.1", clks_per_bit: int = SIM_CLKS_PER_BIT, cache=None,
            max_payload: int | None = None, cores: int = 1, on_line=None,
            progress: bool = False):
    """Serve the emulated board in the background; yield ``(url, process)``.

    The URL is ``socket://host:port`` (a free port when ``port`` is 0) or the pty path.
    ``max_payload``: the board's frame buffer bytes (a power of two; default
    :func:`payload_for`: 4096, more for a board too large for it). ``cores`` > 1: a board
    of that many cores (hdl/host_multi_top.v), each of size ``config``. ``on_line``: called
    with each line the board logs (a client connected or closed, its cycles), else dropped.
    ``progress``: a timer while the board is built (not cached yet).
    """
    proc, url = _launch(build(config, clks_per_bit, cache, max_payload, cores, progress), port,
                        pty, host)
    # the board logs every connection: unread, its pipe fills after ~1,600 of them and the
    # board blocks in printf; drained here, closed with the board
    drain = threading.Thread(target=_drain, args=(proc.stdout, on_line), daemon=True)
    drain.start()
    try:
        yield url, proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drain.join(timeout=10)
        proc.stdout.close()


def _drain(stream, on_line) -> None:
    """Read ``stream`` to its end, each line to ``on_line`` (None: dropped)."""
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            if on_line is not None:
                on_line(line)
