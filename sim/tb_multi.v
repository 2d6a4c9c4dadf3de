// Simulation top for snnkit.multicore: loads a partitioned network into snn_multi over the
// host bus (each core's images through CORE_SEL, the router's tables), feeds the whole
// network's input spikes, runs one RUN per step and dumps spikes, states and weights.
//
// Plusargs: +dir=D (images from snnkit.multicore.build_multi_images: c<k>_pop.hex,
// c<k>_proj.hex, c<k>_weights.hex, c<k>_regs.hex, c<k>_bias.hex, route.hex, inmap.hex, waves.hex,
// dumps.hex), +inputs=F +nin=N (one hex word per line: whole-network input indices,
// 80000000 ends a step), +steps=N, +out=F, +learn=0/1, +states=0/1, +wdump=0/1, +wfinal=0/1.
// Dump lines: "S step index" spike (whole network), "E step cycles" end of step (the
// router's cycle counter), "V core g v i theta", "W core a word", "F core a word",
// "C cycles 0 steps" at the end.
`default_nettype none
`timescale 1ns/1ps
`include "snn_map.vh"

module tb_multi;
    parameter integer CORES     = 2;
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
    localparam integer MAX_IN   = 1 << 21;
    localparam integer K_W      = (CORES > 1) ? $clog2(CORES) : 1;
    localparam integer N_AW     = (N_MAX > 2) ? $clog2(N_MAX) : 1;
    localparam integer G_W      = N_AW + K_W;

    reg         clk = 1'b0;
    reg         rst = 1'b1;
    reg         host_req = 1'b0;
    reg         host_we = 1'b0;
    reg  [23:0] host_addr = 24'd0;
    reg  [31:0] host_wdata = 32'd0;
    wire        host_ready, host_rvalid, busy, out_valid;
    wire [31:0] host_rdata;

    always #5 clk = ~clk;

    snn_multi #(.CORES(CORES), .N_MAX(N_MAX), .SYN_MAX(SYN_MAX), .P_MAX(P_MAX),
                .PR_MAX(PR_MAX), .D_MAX(D_MAX), .TR_MAX(TR_MAX), .W_BITS(W_BITS),
                .S_BITS(S_BITS), .D_BITS(D_BITS), .T_BITS(T_BITS), .FRAC(FRAC),
                .T_FRAC(T_FRAC), .STDP_FRAC(STDP_FRAC), .A_BITS(A_BITS), .R_BITS(R_BITS),
                .IN_DEPTH(IN_DEPTH), .OUT_DEPTH(OUT_DEPTH), .ADDR_W(24)) dut (
        .clk(clk), .rst(rst), .host_req(host_req), .host_we(host_we), .host_addr(host_addr),
        .host_wdata(host_wdata), .host_ready(host_ready), .host_rvalid(host_rvalid),
        .host_rdata(host_rdata), .busy(busy), .out_valid(out_valid));

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
    reg [31:0] route_img [0:CORES*(1<<G_W)-1];
    reg [31:0] inmap_img [0:CORES*(1<<G_W)-1];
    reg [31:0] waves_img [0:CORES];
    reg [31:0] dumps_img [0:2*CORES-1];  // per core: neurons whose state to dump, weight words
    reg [31:0] in_img   [0:MAX_IN-1];

    string dir, f_in, f_out, fname;
    integer steps, learn, states, wdump, wfinal, fd, c, k, g, t, ip, n_in;
    reg [31:0] d, dv, di, dth, stat, cyc;

    task automatic drain_outputs;
        reg [31:0] w;
        begin
            bus_read(24'h000022, w);
            while (w[31]) begin
                $fwrite(fd, "S %0d %0d\n", t, w[15:0]);
                bus_read(24'h000022, w);
            end
        end
    endtask

    initial begin
        if (!$value$plusargs("dir=%s", dir) || !$value$plusargs("inputs=%s", f_in)
                || !$value$plusargs("out=%s", f_out) || !$value$plusargs("steps=%d", steps)) begin
            $display("tb_multi: missing plusargs");
            $fatal(1);
        end
        if (!$value$plusargs("learn=%d", learn)) learn = 1;
        if (!$value$plusargs("states=%d", states)) states = 0;
        if (!$value$plusargs("wdump=%d", wdump)) wdump = 0;
        if (!$value$plusargs("wfinal=%d", wfinal)) wfinal = 0;
        if (!$value$plusargs("nin=%d", n_in)) n_in = 0;
        if (n_in > 0) $readmemh(f_in, in_img, 0, n_in - 1);
        $readmemh({dir, "/route.hex"}, route_img);
        $readmemh({dir, "/inmap.hex"}, inmap_img);
        $readmemh({dir, "/waves.hex"}, waves_img);
        $readmemh({dir, "/dumps.hex"}, dumps_img);
        fd = $fopen(f_out, "w");
        repeat (4) @(posedge clk);
        rst <= 1'b0;
        @(posedge clk);
        for (c = 0; c < CORES; c = c + 1) begin
            bus_write(24'h00001B, c);  // CORE_SEL
            bus_write(24'h000030 + c, waves_img[c]);
            if (waves_img[c][4]) begin
                $sformat(fname, "%s/c%0d_pop.hex", dir, c);
                $readmemh(fname, pop_img);
                $sformat(fname, "%s/c%0d_proj.hex", dir, c);
                $readmemh(fname, proj_img);
                $sformat(fname, "%s/c%0d_regs.hex", dir, c);
                $readmemh(fname, regs_img);
                for (k = 0; k < SYN_MAX; k = k + 1) w_img[k] = 32'd0;
                $sformat(fname, "%s/c%0d_weights.hex", dir, c);
                if (regs_img[2] > 0) $readmemh(fname, w_img, 0, regs_img[2] - 1);
                for (k = 0; k < 16 * P_MAX; k = k + 1) bus_write(24'h000100 + k, pop_img[k]);
                for (k = 0; k < 16 * PR_MAX; k = k + 1) bus_write(24'h000400 + k, proj_img[k]);
                for (k = 0; k < regs_img[2]; k = k + 1)
                    bus_write(24'h200000 + k, {w_img[k][W_BITS], {(31-W_BITS){1'b0}},
                                               w_img[k][W_BITS-1:0]});
                $sformat(fname, "%s/c%0d_bias.hex", dir, c);  // the core's neurons' biases
                $readmemh(fname, b_img, 0, dumps_img[2 * c] - 1);
                for (k = 0; k < dumps_img[2 * c]; k = k + 1)
                    bus_write({`SNN_REGION_BIAS, 20'd0} + k, b_img[k]);
                bus_write(24'h000019, regs_img[0]);
                bus_write(24'h00001A, regs_img[1]);
            end
        end
        bus_write(24'h00002F, waves_img[CORES]);
        for (k = 0; k < CORES * (1 << G_W); k = k + 1) begin
            if (route_img[k] != 0) bus_write(24'h400000 + k, route_img[k]);
            if (inmap_img[k] != 0) bus_write(24'h500000 + k, inmap_img[k]);
        end
        bus_write(24'h000012, learn);
        bus_write(24'h000010, 32'd2);  // RESET_STATE, every core
        @(posedge clk);
        while (busy) @(posedge clk);
        ip = 0;
        for (t = 0; t < steps; t = t + 1) begin
            bus_write(24'h000011, 32'd1);
            bus_write(24'h000010, 32'd1);
            while (ip < n_in && !in_img[ip][31]) begin
                bus_write(24'h000020, in_img[ip]);
                ip = ip + 1;
            end
            bus_write(24'h000020, 32'h8000_0000);
            ip = ip + 1;
            bus_read(24'h000013, stat);
            while (!stat[1]) begin  // until STATUS.done
                if (out_valid) drain_outputs();
                bus_read(24'h000013, stat);
            end
            drain_outputs();
            for (c = 0; c < CORES; c = c + 1) begin
                if (states || wdump) bus_write(24'h00001B, c);
                if (states)
                    for (g = 0; g < dumps_img[2 * c]; g = g + 1) begin
                        bus_read(24'h100000 + 4 * g, dv);
                        bus_read(24'h100000 + 4 * g + 1, di);
                        bus_read(24'h100000 + 4 * g + 3, dth);
                        $fwrite(fd, "V %0d %0d %0d %0d %0d\n", c, g, $signed(dv), $signed(di),
                                $signed(dth));
                    end
                if (wdump)
                    for (k = 0; k < dumps_img[2 * c + 1]; k = k + 1) begin
                        bus_read(24'h200000 + k, d);
                        $fwrite(fd, "W %0d %0d %0d\n", c, k, $signed({d[30], d[30:0]}));
                    end
            end
            bus_read(24'h000015, cyc);
            $fwrite(fd, "E %0d %0d\n", t, cyc);
        end
        if (wfinal)
            for (c = 0; c < CORES; c = c + 1) begin
                bus_write(24'h00001B, c);
                for (k = 0; k < dumps_img[2 * c + 1]; k = k + 1) begin
                    bus_read(24'h200000 + k, d);
                    $fwrite(fd, "F %0d %0d %0d\n", c, k, $signed({d[30], d[30:0]}));
                end
            end
        bus_read(24'h000015, d);
        bus_read(24'h000014, di);
        $fwrite(fd, "C %0d 0 %0d\n", d, di);
        $fclose(fd);
        $finish;
    end

endmodule

`default_nettype wire
