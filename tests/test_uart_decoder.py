"""The UART command decoder (hdl/host_decoder.v and its blocks) behind the RTL UART against
cocotbext-uart and a behavioural core."""

from pathlib import Path

import pytest

from sim.cocotb_runner import run_bench

BENCH_DIR = Path(__file__).resolve().parents[1] / "sim" / "uart"

TESTS = ["identify_reports_regions_and_core_block", "write_then_read_back_every_width",
         "bad_frames_are_refused_and_change_nothing",
         "run_streams_events_and_a_repeated_frame_is_replayed",
         "run_stops_when_the_response_buffer_is_full",
         "run_that_hangs_ends_its_stream_with_abort_and_is_not_rerun",
         "bus_timeout_gives_nack_not_a_hang",
         "random_bytes_then_a_valid_frame_is_accepted"]
SOURCES = ["hdl/uart_rx.v", "hdl/uart_tx.v"] + [
    f"hdl/host_{m}.v" for m in ("decoder", "frame_rx", "cmd", "frame_tx", "crc", "link")] + [
    "sim/uart/decoder_tb.v"]


@pytest.fixture(scope="session", params=["verilator", "icarus"])
def decoder_results(request):
    return run_bench(request.param, "decoder_tb", SOURCES, "decoder_tb", "bench_decoder",
                     {"CLKS_PER_BIT": 4}, BENCH_DIR)


@pytest.mark.parametrize("test", TESTS)
def test_decoder(decoder_results, test):
    assert decoder_results.get(test) == "pass", decoder_results
