"""The core's cocotb benches (sim/core/bench_*.py) on Verilator and Icarus, run with cocotb's
Python runner; each bench is built once per simulator per session. bench_multi: the
multi-core design (two cores and the spike router) on a partitioned network."""

from pathlib import Path

import pytest

from sim.cocotb_runner import run_bench

BENCH_DIR = Path(__file__).resolve().parents[1] / "sim" / "core"

CORE_PARAMS = {"N_MAX": 32, "SYN_MAX": 512, "P_MAX": 4, "PR_MAX": 4, "D_MAX": 3,
               "TR_MAX": 128, "IN_DEPTH": 16, "OUT_DEPTH": 16}
BENCHES = {
    "neuron": ("neuron_cell", ["hdl/snn_integrate.v", "hdl/snn_fire.v", "hdl/snn_sat.v",
                               "hdl/snn_decay.v", "sim/core/neuron_cell.v"], "bench_neuron",
               {"S_BITS": 16, "D_BITS": 12, "ACC_W": 20, "R_BITS": 8}),
    "stdp": ("stdp_synapse", [f"hdl/{m}.v" for m in ("snn_stdp", "snn_stdp_dw",
                                                      "snn_stdp_bound", "snn_stdp_factor",
                                                      "snn_stdp_product", "snn_stdp_term",
                                                      "snn_trace", "snn_decay")]
             + ["sim/core/stdp_synapse.v"], "bench_stdp", {}),
    "core": ("snn_core", [f"hdl/{m}.v" for m in ("snn_core", "snn_seq", "snn_history",
                                                  "snn_pop_map", "snn_integrate",
                                                  "snn_fire", "snn_sat", "snn_stdp",
                                                  "snn_stdp_dw", "snn_stdp_bound",
                                                  "snn_stdp_factor", "snn_stdp_product",
                                                  "snn_stdp_term",
                                                  "snn_trace", "snn_decay",
                                                  "snn_ram", "snn_fifo")],
             "bench_core", CORE_PARAMS),
    "multi": ("snn_multi", [f"hdl/{m}.v" for m in ("snn_multi", "snn_router", "snn_core",
                                                   "snn_seq", "snn_history", "snn_pop_map",
                                                   "snn_integrate", "snn_fire",
                                                   "snn_sat", "snn_stdp", "snn_stdp_dw",
                                                   "snn_stdp_bound", "snn_stdp_factor",
                                                   "snn_stdp_product", "snn_stdp_term",
                                                   "snn_trace", "snn_decay", "snn_ram",
                                                   "snn_fifo")],
              "bench_multi", {"CORES": 2, "N_MAX": 64, "SYN_MAX": 1024, "P_MAX": 8,
                              "PR_MAX": 16, "D_MAX": 3, "TR_MAX": 256}),
}
EXPECTED = {
    "neuron": [f"neuron_matches_neuron_step/case={c}"
               for c in ("random", "saturation", "refractory", "reset", "adaptive")],
    "stdp": [f"synapse_matches_stdp_step/rule={r}/bounds={b}"
             for r in ("all_pairs", "nearest") for b in ("hard", "soft")],
    "core": ["identify_block_reports_the_parameters", "registers_and_tables_read_back",
             "debug_state_and_weights_read_back_sign_extended",
             "a_network_loaded_over_the_bus_matches_the_fixed_simulator",
             "an_input_index_that_is_no_input_sets_the_error_flag",
             "a_population_moved_without_a_reset_takes_its_inputs_at_the_new_offset",
             "a_repeated_input_index_counts_once_and_sets_the_error_flag"],
    "multi": ["a_partitioned_network_matches_the_fixed_simulator_every_step"],
}


@pytest.fixture(scope="session")
def results():
    cache = {}

    def get(bench, sim):
        if (bench, sim) not in cache:
            top, srcs, module, params = BENCHES[bench]
            cache[bench, sim] = run_bench(sim, f"core-{top}", srcs, top, module, params,
                                          BENCH_DIR)
        return cache[bench, sim]

    return get


@pytest.mark.parametrize("sim", ["verilator", "icarus"])
@pytest.mark.parametrize(("bench", "test"), [(b, t) for b, ts in EXPECTED.items() for t in ts])
def test_core_bench(results, bench, test, sim):
    got = results(bench, sim)
    assert got.get(test) == "pass", {k: v for k, v in got.items() if v != "pass"} or got
