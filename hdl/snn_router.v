// snn_router: runs the steps of CORES snn_cores as one network (docs/hardware.md, "Many cores
// in one design"). It is the cores' bus master while it works: each step it starts every
// core (STEPS = 1, RUN), hands each core its input words (the input map gives each core's
// index of a network input), then runs the step in waves: it pushes the end-of-step marker
// to the cores of wave w, lets them run, and meanwhile pops their output FIFOs. Each output
// spike goes to the merged output FIFO (the whole network's index) and, through the route
// table, to the input FIFO of every core with a proxy of that neuron: a lag-0 proxy (a
// delay-0 crossing, read in this step by a later wave) at once; a lag-1 proxy (delay >= 1:
// the next step's input) into the hold FIFO, which the next step hands out first (so that
// RESET_STATE, which empties the hold FIFO, leaves no spike of an old step behind). A step
// ends when every wave is done: each core reported done and its output FIFO is empty.
//
// A bus operation drives one request to a set of cores at once (each core its own data),
// and waits until every one is accepted (and read back).
`default_nettype none
`include "snn_map.vh"

module snn_router #(
    parameter integer CORES  = 2,   // cores
    parameter integer N_AW   = 8,   // a core's neuron index width
    parameter integer K_W    = 1,   // core number width
    parameter integer ADDR_W = 24   // host word-address width
) (
    input  wire                   clk,         // clock
    input  wire                   rst,         // synchronous reset
    input  wire                   cmd_run,     // run run_steps steps (when idle)
    input  wire                   cmd_reset,   // RESET_STATE to every core (when idle)
    input  wire                   cmd_learn,   // LEARN = cmd_data to every core (when idle)
    input  wire [31:0]            cmd_data,    // LEARN value
    input  wire [31:0]            run_steps,   // steps of a RUN
    input  wire [CORES-1:0]       core_en,     // cores holding a network
    input  wire [CORES*4-1:0]     core_wave,   // the wave of each core
    input  wire [3:0]             n_waves,     // waves per step
    input  wire                   st_empty,    // input staging FIFO (whole-network words)
    input  wire [31:0]            st_dout,     //   its oldest word
    output wire                   st_pop,      //   pop it
    input  wire                   mo_full,     // merged output FIFO full
    output wire                   mo_push,     //   push mo_din
    output wire [31:0]            mo_din,      //   {1, step, whole-network index}
    output wire                   im_re,       // input map read (all cores at once)
    output wire [N_AW+K_W-1:0]    im_raddr,    //   whole-network index
    input  wire [CORES*(N_AW+1)-1:0] im_rdata, //   per core {valid, local index}
    output wire                   rt_re,       // route table read (all targets at once)
    output wire [N_AW+K_W-1:0]    rt_raddr,    //   {source core, local index}
    input  wire [CORES*2*(N_AW+1)-1:0] rt_rdata, // per target {lag 1, lag 0} fields
    output wire [CORES-1:0]       bus_req,     // the cores' host buses ...
    output wire                   bus_we,
    output wire [ADDR_W-1:0]      bus_addr,
    output wire [CORES*32-1:0]    bus_wdata,
    input  wire [CORES-1:0]       bus_ready,
    input  wire [CORES-1:0]       bus_rvalid,
    input  wire [CORES*32-1:0]    bus_rdata,
    output wire                   idle,        // waiting for a command
    output wire                   stepping,    // running steps
    output wire                   waiting,     // waiting for input words
    output reg                    done,        // pulse: the RUN finished
    output reg  [14:0]            step_count,  // steps since RESET_STATE
    output reg  [31:0]            steps_left,  // of this RUN
    output reg  [63:0]            cycles       // cycles spent running steps since RESET_STATE
);

    localparam integer G_W = N_AW + K_W, E_W = N_AW + 1, RT_W = 2 * E_W;
    localparam [ADDR_W-1:0] A_CTRL = `SNN_REG_CTRL, A_STEPS = `SNN_REG_STEPS,
                            A_LEARN = `SNN_REG_LEARN, A_STATUS = `SNN_REG_STATUS,
                            A_IN = `SNN_REG_IN_FIFO, A_OUT = `SNN_REG_OUT_FIFO;
    localparam [31:0]       MARK = 32'd1 << `SNN_FIFO_MARK_BIT;  // end of step / valid
    localparam [4:0] S_IDLE = 5'd0, S_WAIT = 5'd1, S_START = 5'd2, S_RUN = 5'd3,
                     S_IN = 5'd4, S_IN_PUSH = 5'd5, S_WAVE = 5'd6, S_FLUSH0 = 5'd7,
                     S_FLUSH = 5'd8, S_POLL_ST = 5'd9, S_POLL_OUT = 5'd10, S_SCAN = 5'd11,
                     S_RT_OUT = 5'd12, S_RT_L0 = 5'd13, S_RT_L1 = 5'd14, S_RT_HOLD = 5'd15,
                     S_END = 5'd16;

    reg [4:0]        state, ret;
    reg [CORES-1:0]  pend, rpend;        // bus operation: requests, reads outstanding
    reg              op_we;
    reg [ADDR_W-1:0] op_addr;
    reg [31:0]       op_wd [0:CORES-1];
    reg [31:0]       rd    [0:CORES-1];  // read data of the last operation
    reg [3:0]        wave;
    reg [CORES-1:0]  fin, dn, pmask, hmask;
    reg [K_W:0]      k;                  // core being scanned
    reg [G_W:0]      flush_n;
    wire [K_W-1:0]   kk = k[K_W-1:0];

    genvar gj;
    generate
        for (gj = 0; gj < CORES; gj = gj + 1) begin : g_bus
            assign bus_wdata[gj*32 +: 32] = op_wd[gj];
        end
    endgenerate
    assign bus_req  = pend;
    assign bus_we   = op_we;
    assign bus_addr = op_addr;

    function [3:0] wave_of(input integer j);
        wave_of = core_wave[j*4 +: 4];
    endfunction

    // the hold FIFO: {target core, proxy index} of lag-1 spikes whose target has no marker yet
    wire             h_empty, h_full;
    wire [G_W-1:0]   h_dout;
    wire [G_W:0]     h_level;
    wire [K_W-1:0]   h_j   = h_dout[G_W-1:N_AW];
    reg  [K_W-1:0]   hsel;               // lowest core of hmask
    integer          q;
    always @* begin
        hsel = {K_W{1'b0}};
        for (q = CORES - 1; q >= 0; q = q - 1)
            if (hmask[q]) hsel = q[K_W-1:0];
    end
    wire h_pop  = state == S_FLUSH && flush_n != 0;
    wire h_push = state == S_RT_HOLD && hmask != 0;
    wire [G_W-1:0] h_din = {hsel, rt_rdata[hsel*RT_W + E_W +: N_AW]};
    snn_fifo #(.DATA_W(G_W), .DEPTH(1 << G_W), .ADDR_W(G_W)) u_hold (
        .clk(clk), .rst(rst || (state == S_IDLE && cmd_reset)), .push(h_push), .din(h_din), .pop(h_pop), .dout(h_dout),
        .empty(h_empty), .full(h_full), .level(h_level));

    assign st_pop   = state == S_IN && !st_empty;
    assign im_re    = st_pop && !st_dout[`SNN_FIFO_MARK_BIT];
    assign im_raddr = st_dout[G_W-1:0];
    wire   got      = pmask[kk] && rd[kk][`SNN_FIFO_MARK_BIT] && !k[K_W];  // kk spiked
    assign rt_re    = state == S_SCAN && got;
    assign rt_raddr = {kk, rd[kk][N_AW-1:0]};
    wire   self_v   = rt_rdata[kk*RT_W + G_W];
    assign mo_push  = state == S_RT_OUT && self_v && !mo_full;
    assign mo_din   = {1'b1, step_count, {(16 - G_W){1'b0}}, rt_rdata[kk*RT_W +: G_W]};
    assign idle     = state == S_IDLE;
    assign stepping = !idle;
    assign waiting  = state == S_IN && st_empty;

    // cores of this wave; those of it still running; route fields; the hold FIFO's target
    reg [CORES-1:0] wave_m, run_m, l0_m, l1_m, im_valid, h_one;
    always @* begin
        for (q = 0; q < CORES; q = q + 1) begin
            im_valid[q] = im_rdata[q*E_W + N_AW];
            h_one[q]  = h_j == q;
            wave_m[q] = core_en[q] && wave_of(q) == wave;
            run_m[q]  = wave_m[q] && !fin[q];
            l0_m[q]   = q != kk && rt_rdata[q*RT_W + N_AW];
            l1_m[q]   = q != kk && rt_rdata[q*RT_W + E_W + N_AW];
        end
    end

    task automatic issue(input [CORES-1:0] m, input we, input [ADDR_W-1:0] a,
                         input [4:0] next);
        begin
            pend <= m; op_we <= we; op_addr <= a; ret <= next; state <= S_WAIT;
        end
    endtask

    always @(posedge clk) begin
        done <= 1'b0;
        if (rst) begin
            state <= S_IDLE; pend <= {CORES{1'b0}}; rpend <= {CORES{1'b0}};
            step_count <= 15'd0; steps_left <= 32'd0; cycles <= 64'd0;
        end else begin
            for (q = 0; q < CORES; q = q + 1) begin
                if (pend[q] && bus_ready[q]) begin
                    pend[q] <= 1'b0;
                    if (!op_we) rpend[q] <= 1'b1;
                end
                if (rpend[q] && bus_rvalid[q]) begin
                    rpend[q] <= 1'b0;
                    rd[q] <= bus_rdata[q*32 +: 32];
                end
            end
            if (!idle) cycles <= cycles + 64'd1;
            case (state)
                S_IDLE: begin
                    for (q = 0; q < CORES; q = q + 1)
                        op_wd[q] <= cmd_reset ? (32'd1 << `SNN_CTRL_RESET_STATE_BIT) : cmd_data;
                    if (cmd_reset) begin
                        step_count <= 15'd0; cycles <= 64'd0;
                        issue({CORES{1'b1}}, 1'b1, A_CTRL, S_IDLE);
                    end else if (cmd_learn) begin
                        issue({CORES{1'b1}}, 1'b1, A_LEARN, S_IDLE);
                    end else if (cmd_run) begin
                        steps_left <= run_steps;
                        if (run_steps == 32'd0) done <= 1'b1;
                        else state <= S_START;
                    end
                end
                S_WAIT: if (pend == 0 && rpend == 0) state <= ret;
                S_START: begin
                    fin <= {CORES{1'b0}}; wave <= 4'd0;
                    for (q = 0; q < CORES; q = q + 1) op_wd[q] <= 32'd1;  // STEPS = 1, RUN
                    issue(core_en, 1'b1, A_STEPS, S_RUN);
                end
                S_RUN: begin
                    for (q = 0; q < CORES; q = q + 1) op_wd[q] <= 32'd1 << `SNN_CTRL_RUN_BIT;
                    issue(core_en, 1'b1, A_CTRL, S_FLUSH0);
                end
                S_IN: if (!st_empty) state <= st_dout[`SNN_FIFO_MARK_BIT] ? S_WAVE : S_IN_PUSH;
                S_IN_PUSH: begin
                    for (q = 0; q < CORES; q = q + 1)
                        op_wd[q] <= {{(32-N_AW){1'b0}}, im_rdata[q*E_W +: N_AW]};
                    issue(core_en & im_valid, 1'b1, A_IN, S_IN);
                end
                S_WAVE: begin
                    for (q = 0; q < CORES; q = q + 1) op_wd[q] <= MARK;
                    issue(wave_m, 1'b1, A_IN, S_POLL_ST);
                end
                S_FLUSH0: begin
                    flush_n <= h_level;
                    state <= S_FLUSH;
                end
                S_FLUSH: begin  // the last step's lag-1 spikes: this step's first inputs
                    if (flush_n == 0) begin
                        state <= S_IN;
                    end else begin
                        flush_n <= flush_n - 1'b1;
                        op_wd[h_j] <= {{(32-N_AW){1'b0}}, h_dout[N_AW-1:0]};
                        issue(h_one, 1'b1, A_IN, S_FLUSH);
                    end
                end
                S_POLL_ST: begin
                    if (run_m == 0) begin
                        if (wave + 4'd1 >= n_waves) state <= S_END;
                        else begin
                            wave <= wave + 4'd1;
                            state <= S_WAVE;
                        end
                    end else begin
                        pmask <= run_m;
                        issue(run_m, 1'b0, A_STATUS, S_POLL_OUT);
                    end
                end
                S_POLL_OUT: begin
                    for (q = 0; q < CORES; q = q + 1) dn[q] <= rd[q][`SNN_STATUS_DONE_BIT];
                    k <= {(K_W+1){1'b0}};
                    issue(pmask, 1'b0, A_OUT, S_SCAN);
                end
                S_SCAN: begin
                    if (k[K_W] || k == CORES) state <= S_POLL_ST;
                    else if (got) state <= S_RT_OUT;
                    else begin
                        if (pmask[kk] && dn[kk]) fin[kk] <= 1'b1;
                        k <= k + 1'b1;
                    end
                end
                S_RT_OUT: if (!self_v || !mo_full) state <= S_RT_L0;
                S_RT_L0: begin
                    for (q = 0; q < CORES; q = q + 1)
                        op_wd[q] <= {{(32-N_AW){1'b0}}, rt_rdata[q*RT_W +: N_AW]};
                    issue(l0_m, 1'b1, A_IN, S_RT_L1);
                end
                S_RT_L1: begin
                    hmask <= l1_m;
                    state <= S_RT_HOLD;
                end
                S_RT_HOLD: begin
                    if (hmask == 0) begin
                        k <= k + 1'b1;
                        state <= S_SCAN;
                    end else begin
                        hmask[hsel] <= 1'b0;
                    end
                end
                S_END: begin
                    step_count <= step_count + 15'd1;
                    steps_left <= steps_left - 32'd1;
                    if (steps_left == 32'd1) begin
                        done <= 1'b1;
                        state <= S_IDLE;
                    end else begin
                        state <= S_START;
                    end
                end
                default: state <= S_IDLE;
            endcase
        end
    end

    // verilator lint_off UNUSEDSIGNAL
    wire unused_ok = ^{h_empty, h_full};
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
