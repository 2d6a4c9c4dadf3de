"""The RTL decoder soaked with junk on the emulated board (sim/uart/soak.py; the long run is
benchmarks/decoder_soak.py): after every round of random bytes and frames with bad CRCs or
lengths, a valid frame sent after a silence is answered (no hang, resynchronised), and the
board's link counters add up with the responses that came back."""

from sim.uart.soak import soak
from snnkit.emulated_board import MAX_PAYLOAD, running

from .test_device_emulator import CONFIG


def test_junk_then_valid_frames_are_answered_and_counters_add_up():
    with running(CONFIG) as (url, _):
        r = soak(url, total=12_000, rounds=3, seed=5, max_payload=MAX_PAYLOAD)
    assert r.junk_bytes >= 12_000 and r.junk_frames > 50
    assert r.answered == r.probes == 4  # one before the junk, one after each round
    assert r.counters_add_up() == []
    assert r.responses["nack BAD_CRC"] > 0 and r.responses["nack BAD_LENGTH"] > 0
