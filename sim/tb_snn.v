// Simulation top for snnkit.rtl_backend: loads a compiled network into the core (snn_core)
// over the host bus, feeds input spikes, runs steps and dumps spikes, states and weights as
// text lines. Addresses and bits: hdl/snn_map.vh.
//
// Plusargs: +pop=F +proj=F +weights=F +regs=F +bias=F (images from snnkit.compile; +nbias=N:
// the words in bias.hex, the biases of neurons 0 .. N-1), +inputs=F (one
// hex word per line: input indices, 80000000 ends a step), +nin=N (words in F), +steps=N, +out=F (dump),
// +nstate=N (neurons whose state to dump each step, 0: none), +wdump=N (weight words to dump
// each step, 0: none), +learn=0/1. Without state or weight dumps all steps run in one RUN
// with inputs streamed in ("fast" mode); otherwise one RUN per step.
// Dump lines: "S step index" spike, "E step" end of step, "V g v i theta" state,
// "W a word" weight, "F a word" final weight, "C cycles syn_events steps" at the end.
`default_nettype none
`timescale 1ns/1ps
`include "snn_map.vh"

module tb_snn;
    parameter integer N_MAX     = 256;
    parameter integer SYN_MAX   = 16384;
    parameter integer P_MAX     = 8;
    parameter integer PR_MAX    = 16;
    parameter integer D_MAX     = 7;
    parameter integer TR_MAX    = 1024;
    parameter integer W_BITS    = 8;
    parameter integer S_BITS    = 16;
    parameter integer D_BITS    = 12;
    parameter integer T_BITS    = 8;
    parameter integer FRAC      = 6;
    parameter integer T_FRAC    = 6;
    parameter integer STDP_FRAC = 8;
    parameter integer A_BITS    = 24;
    parameter integer R_BITS    = 8;
    parameter integer IN_DEPTH  = 256;
    parameter integer OUT_DEPTH = 256;
    parameter integer DELAYED_RESET = 0;
    localparam integer MAX_IN   = 1 << 21;
    localparam [23:0]  STATE_BASE  = {`SNN_REGION_STATE, 20'd0};   // word 0 of region STATE
    localparam [23:0]  WEIGHT_BASE = {`SNN_REGION_WEIGHT, 20'd0};  // ... of region WEIGHT
    localparam [23:0]  BIAS_BASE   = {`SNN_REGION_BIAS, 20'd0};    // ... of region BIAS
    localparam integer MARK = `SNN_FIFO_MARK_BIT;

    reg         clk = 1'b0;
    reg         rst = 1'b1;
    reg         host_req = 1'b0;
    reg         host_we = 1'b0;
    reg  [23:0] host_addr = 24'd0;
    reg  [31:0] host_wdata = 32'd0;
    wire        host_ready, host_rvalid, busy, out_valid;
    wire [31:0] host_rdata;

    always #5 clk = ~clk;

    snn_core #(.N_MAX(N_MAX), .SYN_MAX(SYN_MAX), .P_MAX(P_MAX), .PR_MAX(PR_MAX),
               .D_MAX(D_MAX), .TR_MAX(TR_MAX), .W_BITS(W_BITS), .S_BITS(S_BITS),
               .D_BITS(D_BITS), .T_BITS(T_BITS), .FRAC(FRAC), .T_FRAC(T_FRAC),
               .STDP_FRAC(STDP_FRAC), .A_BITS(A_BITS), .R_BITS(R_BITS),
               .IN_DEPTH(IN_DEPTH), .OUT_DEPTH(OUT_DEPTH), .ADDR_W(24),
               .DELAYED_RESET(DELAYED_RESET)) dut (
        .clk(clk), .rst(rst), .host_req(host_req), .host_we(host_we), .host_addr(host_addr),
        .host_wdata(host_wdata), .host_ready(host_ready), .host_rvalid(host_rvalid),
        .host_rdata(host_rdata), .busy(busy), .out_valid(out_valid));

    // requests are driven and host_ready sampled mid-cycle (negedge), so the rising edge that
    // accepts a request is known without racing the design's registers
    task automatic bus_request(input [23:0] a, input we, input [31:0] d);
        begin
            @(negedge clk);
            host_req = 1'b1; host_we = we; host_addr = a; host_wdata = d;
            #1;
            while (!host_ready) begin
                @(negedge clk);
                #1;
            end
            @(posedge clk);
            #1;
            host_req = 1'b0; host_we = 1'b0;
        end
    endtask

    task automatic bus_write(input [23:0] a, input [31:0] d);
        bus_request(a, 1'b1, d);
    endtask

    task automatic bus_read(input [23:0] a, output [31:0] d);
        begin
            bus_request(a, 1'b0, 32'd0);
            while (!host_rvalid) begin
                @(posedge clk);
                #1;
            end
            d = host_rdata;
        end
    endtask

    reg [31:0] pop_img  [0:16*P_MAX-1];
    reg [31:0] proj_img [0:16*PR_MAX-1];
    reg [31:0] regs_img [0:2];
    reg [31:0] w_img    [0:SYN_MAX-1];
    reg [31:0] b_img    [0:N_MAX-1];
    reg [31:0] in_img   [0:MAX_IN-1];

    string f_pop, f_proj, f_w, f_regs, f_in, f_out, f_bias;
    integer steps, nstate, wdump, wfinal, learn, fd, k, g, t, ip, n_in, last_step, step_hi;
    integer n_bias;
    reg [31:0] d, dv, di, dth, stat;

    task automatic drain_outputs;
        reg [31:0] w;
        integer s15;
        begin
            bus_read(`SNN_REG_OUT_FIFO, w);
            while (w[MARK]) begin
                s15 = w[30:16];
                if (s15 < (last_step & 32'h7FFF)) step_hi = step_hi + 32768;
                last_step = step_hi + s15;
                $fwrite(fd, "S %0d %0d\n", last_step, w[15:0]);
                bus_read(`SNN_REG_OUT_FIFO, w);
            end
        end
    endtask

    initial begin
        if (!$value$plusargs("pop=%s", f_pop) || !$value$plusargs("proj=%s", f_proj)
                || !$value$plusargs("weights=%s", f_w) || !$value$plusargs("regs=%s", f_regs)
                || !$value$plusargs("inputs=%s", f_in) || !$value$plusargs("out=%s", f_out)
                || !$value$plusargs("steps=%d", steps)) begin
            $display("tb_snn: missing plusargs");
            $fatal(1);
        end
        if (!$value$plusargs("nstate=%d", nstate)) nstate = 0;
        if (!$value$plusargs("wdump=%d", wdump)) wdump = 0;
        if (!$value$plusargs("learn=%d", learn)) learn = 1;
        if (!$value$plusargs("wfinal=%d", wfinal)) wfinal = 0;
        if (!$value$plusargs("nin=%d", n_in)) n_in = 0;
        if (!$value$plusargs("nbias=%d", n_bias) || !$value$plusargs("bias=%s", f_bias))
            n_bias = 0;
        $readmemh(f_pop, pop_img);
        $readmemh(f_proj, proj_img);
        $readmemh(f_regs, regs_img);
        if (n_in > 0) $readmemh(f_in, in_img, 0, n_in - 1);
        if (n_bias > 0) $readmemh(f_bias, b_img, 0, n_bias - 1);
        for (k = 0; k < SYN_MAX; k = k + 1) w_img[k] = 32'd0;
        if (regs_img[2] > 0) $readmemh(f_w, w_img, 0, regs_img[2] - 1);
        fd = $fopen(f_out, "w");
        repeat (4) @(posedge clk);
        rst <= 1'b0;
        @(posedge clk);
        // load the network over the bus
        for (k = 0; k < 16 * P_MAX; k = k + 1) bus_write(`SNN_POP_TABLE + k, pop_img[k]);
        for (k = 0; k < 16 * PR_MAX; k = k + 1) bus_write(`SNN_PROJ_TABLE + k, proj_img[k]);
        for (k = 0; k < regs_img[2]; k = k + 1)  // {plastic, weight}: bit 31 is PLASTIC_BIT
            bus_write(WEIGHT_BASE + k, {w_img[k][W_BITS], {(31-W_BITS){1'b0}},
                                        w_img[k][W_BITS-1:0]});
        for (k = 0; k < n_bias; k = k + 1) bus_write(BIAS_BASE + k, b_img[k]);
        bus_write(`SNN_REG_N_POP, regs_img[0]);
        bus_write(`SNN_REG_N_PROJ, regs_img[1]);
        bus_write(`SNN_REG_LEARN, learn);
        bus_write(`SNN_REG_CTRL, 32'd1 << `SNN_CTRL_RESET_STATE_BIT);
        @(posedge clk);
        while (busy) @(posedge clk);
        ip = 0; last_step = 0; step_hi = 0;
        if (nstate == 0 && wdump == 0) begin
            // fast mode: one RUN, inputs streamed, outputs drained while running
            bus_write(`SNN_REG_STEPS, steps);
            bus_write(`SNN_REG_CTRL, 32'd1 << `SNN_CTRL_RUN_BIT);
            bus_read(`SNN_REG_STATUS, stat);
            while (!stat[`SNN_STATUS_DONE_BIT] || ip < n_in || out_valid) begin
                if (out_valid) drain_outputs();
                else if (ip < n_in) begin
                    bus_read(`SNN_REG_IN_LEVEL, d);
                    for (k = d; k < IN_DEPTH && ip < n_in; k = k + 1) begin
                        bus_write(`SNN_REG_IN_FIFO, in_img[ip]);
                        ip = ip + 1;
                    end
                end else bus_read(`SNN_REG_STATUS, stat);
            end
            for (t = 0; t < steps; t = t + 1) $fwrite(fd, "E %0d\n", t);
        end else begin
            for (t = 0; t < steps; t = t + 1) begin
                while (ip < n_in && !in_img[ip][MARK]) begin
                    bus_write(`SNN_REG_IN_FIFO, in_img[ip]);
                    ip = ip + 1;
                end
                bus_write(`SNN_REG_IN_FIFO, 32'd1 << MARK);  // end of step
                ip = ip + 1;
                bus_write(`SNN_REG_STEPS, 32'd1);
                bus_write(`SNN_REG_CTRL, 32'd1 << `SNN_CTRL_RUN_BIT);
                bus_read(`SNN_REG_STATUS, stat);
                while (!stat[`SNN_STATUS_DONE_BIT]) begin
                    if (out_valid) drain_outputs();
                    bus_read(`SNN_REG_STATUS, stat);
                end
                drain_outputs();
                for (g = 0; g < nstate; g = g + 1) begin
                    bus_read(STATE_BASE + `SNN_STATE_STRIDE * g + `SNN_STATE_V, dv);
                    bus_read(STATE_BASE + `SNN_STATE_STRIDE * g + `SNN_STATE_I, di);
                    bus_read(STATE_BASE + `SNN_STATE_STRIDE * g + `SNN_STATE_THETA, dth);
                    $fwrite(fd, "V %0d %0d %0d %0d\n", g, $signed(dv), $signed(di), $signed(dth));
                end
                for (k = 0; k < wdump; k = k + 1) begin
                    bus_read(WEIGHT_BASE + k, d);
                    $fwrite(fd, "W %0d %0d\n", k, $signed({d[30], d[30:0]}));
                end
                $fwrite(fd, "E %0d\n", t);
            end
        end
        for (k = 0; k < wfinal; k = k + 1) begin
            bus_read(WEIGHT_BASE + k, d);
            $fwrite(fd, "F %0d %0d\n", k, $signed({d[30], d[30:0]}));
        end
        bus_read(`SNN_REG_CYCLES_LO, d);
        bus_read(`SNN_REG_SYN_EVENTS, dv);
        bus_read(`SNN_REG_STEP_COUNT, di);
        $fwrite(fd, "C %0d %0d %0d\n", d, dv, di);
        bus_read(`SNN_REG_STATUS, stat);
        if (stat[`SNN_STATUS_INPUT_ERROR_BIT]) $fwrite(fd, "X input error\n");
        $fclose(fd);
        $finish;
    end

endmodule

`default_nettype wire
