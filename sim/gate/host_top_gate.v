// host_top_gate: the iCE40 gate-level netlist of host_top (the board without its clock:
// UART, decoder and core; module host_top of yosys synth_ice40's cells) behind host_top's
// ports. CLKS_PER_BIT only tells the bench (sim/gate/bench_board.py) the baud divider the
// netlist was synthesised with. Used by tests/test_gate_level.py.
`default_nettype none

module host_top_gate #(
    parameter integer CLKS_PER_BIT = 4
) (
    input  wire clk,
    input  wire rst,
    input  wire uart_rx,
    output wire uart_tx,
    output wire busy,
    output wire out_valid,
    output wire link_active
);

    host_top u_board (
        .clk(clk), .rst(rst), .uart_rx(uart_rx), .uart_tx(uart_tx), .busy(busy),
        .out_valid(out_valid), .link_active(link_active)
    );

endmodule

`default_nettype wire
