"""hdl/uart_rx.v and uart_tx.v against cocotbext-uart, on Verilator and Icarus."""

from pathlib import Path

import pytest

from sim.cocotb_runner import run_bench

BENCH_DIR = Path(__file__).resolve().parents[1] / "sim" / "uart"

TESTS = ["rx_receives_random_bytes", "rx_drops_byte_with_low_stop_bit_and_recovers",
         "tx_sends_random_bytes_back_to_back", "loopback_through_both"]


@pytest.fixture(scope="session", params=["verilator", "icarus"])
def uart_results(request):
    return run_bench(request.param, "uart_pair", ["hdl/uart_rx.v", "hdl/uart_tx.v",
                                                  "sim/uart/uart_pair.v"],
                     "uart_pair", "bench_uart", {"CLKS_PER_BIT": 8}, BENCH_DIR)


@pytest.mark.parametrize("test", TESTS)
def test_uart(uart_results, test):
    assert uart_results.get(test) == "pass", uart_results
