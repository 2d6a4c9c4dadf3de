// The step sequencer: runs whole time steps over the core's memories.
//
// One step (docs/hardware.md): 1. take the input spikes of this step from the input FIFO
// (up to an end-of-step marker) into the event list of the current history slot;
// 2. for every neuron population in table order, for every neuron: sum the weights of the
// spikes arriving now over its incoming projections (event driven: only the events of the
// source population in slot (step - delay) are read, one per cycle), then update the neuron
// and append its spike to the event list; 3. STDP over every plastic projection (traces,
// then every synapse); 4. the history slot advances.
// The spike history (snn_history: event lists, bitmap, event counts) and the input map
// (snn_pop_map) are this block's; states, weights and traces are the core's, shared with the
// host bus while idle. Table fields and flag bits: snn_map.vh.
`default_nettype none
`include "snn_map.vh"

module snn_seq #(
    parameter integer N_MAX     = 256,   // neurons incl. inputs
    parameter integer P_MAX     = 8,     // populations
    parameter integer PR_MAX    = 16,    // projections
    parameter integer D_MAX     = 7,     // largest delay
    parameter integer TR_MAX    = 1024,  // trace words
    parameter integer W_BITS    = 8,     // weight width
    parameter integer S_BITS    = 16,    // state width
    parameter integer D_BITS    = 12,    // decay fraction bits
    parameter integer T_BITS    = 8,     // trace width
    parameter integer FRAC      = 6,     // weight fraction bits
    parameter integer T_FRAC    = 6,     // trace fraction bits
    parameter integer STDP_FRAC = 8,     // amplitude extra fraction bits
    parameter integer A_BITS    = 24,    // amplitude width
    parameter integer R_BITS    = 8,     // refractory counter width
    parameter integer ACC_W     = 20,    // synaptic sum width
    parameter integer N_AW      = 8,     // neuron address width
    parameter integer SYN_AW    = 14,    // weight address width
    parameter integer TR_AW     = 10,    // trace address width
    parameter integer PP_W      = 3,     // population index width
    parameter integer PR_W      = 4,     // projection index width
    parameter integer PT_W      = 4,     // table entry index width (max of PP_W, PR_W)
    parameter integer DELAYED_RESET = 0, // 1: the delayed reset's inputs C1, C2 (D_MAX >= 2;
                                         // its logic is g_dr below, none when 0)
    parameter integer SLW       = (D_MAX + 1 > 2) ? $clog2(D_MAX + 1) : 1  // slot index width
) (
    input  wire                  clk,          // clock
    input  wire                  rst,          // synchronous reset
    input  wire                  cmd_run,      // start running run_steps steps (idle only)
    input  wire                  cmd_clear,    // start the state reset pass (idle only)
    input  wire [31:0]           run_steps,    // steps for cmd_run
    input  wire                  learn,        // global learning enable
    input  wire                  w_touched,    // the host wrote a weight or a projection field
    input  wire [PP_W:0]         n_pop,        // populations in use
    input  wire [PR_W:0]         n_proj,       // projections in use
    input  wire [P_MAX*(N_AW+1)-1:0] pc_off,   // per population: OFFSET
    input  wire [P_MAX*(N_AW+1)-1:0] pc_size,  // SIZE
    input  wire [P_MAX*3-1:0]    pc_flags,     // FLAGS
    input  wire [PR_MAX*PP_W-1:0] rc_src,      // per projection: SRC
    input  wire [PR_MAX*PP_W-1:0] rc_tgt,      // TGT
    input  wire [PR_MAX*(SLW+1)-1:0] rc_delay, // DELAY
    input  wire [PR_MAX*3-1:0]   rc_flags,     // FLAGS
    output reg                   tab_re,       // table word read (parameters of one entry)
    output reg                   tab_proj,     // 1: projection table, 0: population table
    output reg  [PT_W-1:0]       tab_entry,    // entry
    output reg  [3:0]            tab_field,    // field
    output reg                   wb_re,        // W_BASE read of projection wb_entry (neuron
    output reg  [PR_W-1:0]       wb_entry,     // pass: the issued item's, for its weight)
    input  wire [31:0]           tab_pop_rdata,  // word, two cycles after the read
    input  wire [31:0]           tab_proj_rdata, // word, two cycles after the read
    input  wire                  geo_touched,  // the host wrote an OFFSET, a SIZE or N_POP
    input  wire                  in_empty,     // input FIFO empty
    input  wire [31:0]           in_data,      // input FIFO head
    output reg                   in_pop,       // consume the input FIFO head
    input  wire                  out_room,     // output FIFO has 4 or more free words
    output reg                   out_push,     // push out_data
    output reg  [31:0]           out_data,     // {1, step[14:0], index[15:0]}
    output wire                  busy,         // not idle
    output wire                  stepping,     // running steps (busy, not in the reset pass)
    output reg                   done,         // a run finished (pulse)
    output reg                   in_err,       // an input index was not an input neuron (pulse)
    output wire                  waiting,      // waiting for an end-of-step marker
    output reg                   syn_event,    // one weight was routed (pulse)
    output reg  [14:0]           step_count,   // steps since the last clear, low bits (the
                                               // core counts the rest: step_wrap)
    output reg                   step_wrap,    // step_count wrapped to 0 (pulse)
    output reg  [31:0]           steps_left,   // steps left in the run
    output reg                   st_re,        // neuron state read
    output reg  [N_AW-1:0]       st_raddr,     // neuron state read address
    input  wire [S_BITS-1:0]     st_rv,        // v
    input  wire [S_BITS-1:0]     st_ri,        // i
    input  wire [R_BITS-1:0]     st_rref,      // refractory counter
    input  wire [S_BITS-1:0]     st_rth,       // theta
    input  wire [S_BITS-1:0]     st_rbias,     // the neuron's bias (read with its state)
    output reg                   st_we,        // neuron state write (all four fields)
    output reg  [N_AW-1:0]       st_waddr,     // neuron state write address
    output reg  [S_BITS-1:0]     st_wv,        // v
    output reg  [S_BITS-1:0]     st_wi,        // i
    output reg  [R_BITS-1:0]     st_wref,      // refractory counter
    output reg  [S_BITS-1:0]     st_wth,       // theta
    output reg                   w_re,         // weight read
    output reg  [SYN_AW-1:0]     w_raddr,      // weight read address
    input  wire [W_BITS:0]       w_rdata,      // {plastic, weight}
    output reg                   w_we,         // weight write
    output wire [SYN_AW-1:0]     w_waddr,      // weight write address (= w_raddr)
    output reg  [W_BITS:0]       w_wdata,      // {plastic, weight}
    output reg                   tr_re,        // trace read
    output reg  [TR_AW-1:0]      tr_raddr,     // trace read address
    input  wire [2*T_BITS-1:0]   tr_rdata,     // {decayed, next}
    output reg                   tr_we,        // trace write
    output wire [TR_AW-1:0]      tr_waddr,     // trace write address (= tr_raddr)
    output reg  [2*T_BITS-1:0]   tr_wdata      // {decayed, next}
);

    // ------------------------------------------------------------------ sizes and fields
    localparam integer NSLOT = D_MAX + 1;
    localparam integer H_N   = NSLOT * N_MAX;                    // history entries
    localparam integer H_AW  = (H_N > 2) ? $clog2(H_N) : 1;
    localparam integer C_W   = N_AW + 1;                         // counts 0 .. N_MAX
    localparam integer SL_W  = (NSLOT > 2) ? $clog2(NSLOT) : 1;
    localparam integer CLR_H = (H_N > TR_MAX) ? H_N : TR_MAX;
    localparam integer CLR_N = (CLR_H > N_MAX) ? CLR_H : N_MAX;
    localparam integer CL_W  = $clog2(CLR_N) + 1;                // counts 0 .. CLR_N
    // clr < C for the clear pass's limits: a test of the high bits when C is a power of two
    // (no comparator carry chain)
    function automatic clr_lt;
        input [CL_W-1:0] x;
        input integer c;
        integer l;
        begin
            l = $clog2(c);
            if (c == (1 << l)) clr_lt = ({{(32-CL_W){1'b0}}, x} >> l) == 32'd0;
            else clr_lt = {{(32-CL_W){1'b0}}, x} < c;
        end
    endfunction

    // ------------------------------------------------------------------ state
    localparam [4:0] S_IDLE = 5'd0, S_CLR = 5'd1, S_IN0 = 5'd2, S_IN = 5'd3, S_POP = 5'd4;
    localparam [4:0] S_PLST = 5'd5, S_RUN = 5'd6, S_STDP = 5'd7;
    localparam [4:0] S_TPRE = 5'd8, S_TPOST = 5'd9, S_SYN = 5'd10, S_NEXT = 5'd11;
    localparam [4:0] S_MAP = 5'd12, S_LDP = 5'd13, S_LDS = 5'd14;
    localparam [4:0] S_SYA = 5'd15, S_SYAS = 5'd16, S_SYB = 5'd17, S_SYBS = 5'd18;

    reg [4:0]        state;
    reg [SL_W-1:0]   cur;          // history slot of this step
    reg [PP_W:0]     pi;           // population being updated / scanned
    reg [C_W-1:0]    t;            // neuron (target) index inside the population
    reg [PR_W:0]     k;            // projection
    reg [C_W-1:0]    j;            // event index / source index
    reg [3:0]        ph;           // phase inside a multi-cycle item
    reg [CL_W-1:0]   clr;          // clear pass counter
    wire [31:0]      clr32 = {{(32-CL_W){1'b0}}, clr};
    // which population holds a global index: the input map (snn_pop_map), written by S_MAP,
    // a pass over every population's neurons after the reset pass (which zeroes every entry;
    // S_MAP also writes V_INIT there) and before the first step after the host changed an
    // OFFSET, a SIZE or N_POP (map_ok; the clear pass runs first then too, zeroing only the
    // map)
    wire [PP_W:0]    pm_q;         // the entry of the last cycle's lk_idx
    reg              pm_we;
    reg  [N_AW-1:0]  pm_waddr;
    reg  [PP_W:0]    pm_wdata;
    reg              map_ok;       // the map matches the tables
    reg              map_clr;      // S_MAP runs for the reset pass (writes V_INIT)
    wire [15:0]      lk_idx = in_data[15:0];  // S_IN: the input index at the FIFO head
    wire [PP_W-1:0]  lk_pop = pm_q[PP_W-1:0];
    wire             lk_hit = pm_q[PP_W] && (lk_idx >> N_AW) == 16'd0;

    snn_pop_map #(.N_MAX(N_MAX), .N_AW(N_AW), .PP_W(PP_W)) u_pop_map (
        .clk(clk), .we(pm_we), .waddr(pm_waddr), .wdata(pm_wdata),
        .raddr(lk_idx[N_AW-1:0]), .rdata(pm_q));

    reg signed [ACC_W-1:0] acc;    // synaptic input of neuron t
    // read pipeline: RAM addresses are registered, so data comes two edges after the issue
    reg              p1_valid;     // event read issued
    reg              p1b_valid;    // event read data valid
    reg [N_AW-1:0]   p1_off;       // population offset of the issued event (input clearing)
    reg [N_AW-1:0]   p1b_off;      // ... of the event whose data is valid
    reg              p1c_valid;    // the event word registered (ev_m): its weight address now
    reg              p2_valid;     // weight read issued
    reg              p2b_valid;    // weight read data valid
    reg              p3_valid;     // the weight registered (w_q): summed now
    // neuron pass (S_RUN), one item per cycle through the pipeline: an event of one of the
    // neuron's projections, or an empty item (a neuron takes at least 3 items: its decays
    // share one multiplier); each carries its neuron and whether it is the neuron's last
    // (the weight RAM's word is registered before the sum, p3: on the ECP5 a core's 32
    // block RAMs of weights and their read multiplexer take a cycle of their own; the event
    // word is registered before the row-offset multiplier, p1c: the ECP5's critical path ran
    // from the event block RAM through the multiplier and the address adder)
    reg              p1_ev, p1b_ev, p1c_ev, p2_ev, p2b_ev, p3_ev;      // the item is an event
    reg              p1_last, p1b_last, p1c_last, p2_last, p2b_last, p3_last;  // its last item
    reg [C_W-1:0]    p1_t, p1b_t, p1c_t, p2_t, p2b_t, p3_t;           // its neuron
    reg [PR_W-1:0]   p1_k;         // its projection (W_BASE is read at p1, used at p1c)
    reg [C_W-1:0]    ti;           // neuron being issued
    reg [PR_W:0]     li;           // index into the list of projections with events
    reg [1:0]        ni;           // items issued for neuron ti (saturates at 3)
    reg [PR_W-1:0]   nl_k [0:PR_MAX-1];  // incoming projections with events this step
    reg [C_W-1:0]    nl_c [0:PR_MAX-1];  // ... their event counts - 1
    reg              pl_v;         // S_PLST: the count of projection pl_k is being read
    reg [PR_W-1:0]   pl_k;
    reg [PR_W:0]     nl_n;         // how many
    // S_RUN: events of entry li after event j, set to nl_c[li] with li (as k = nl_k[li]) and
    // counted down with j, so that "j is the entry's last event" is lc_q == 0 (a test of a
    // register, not an adder and a comparator in front of k's enable)
    reg [C_W-1:0]    lc_q;
    // 1 .. 7 cycles after a neuron's last item (its state is read at sr0, two cycles after
    // the item, so that it arrives with the weight sum, which is two pipeline stages later)
    reg              srp, sr0, sr1, sr2, sr3, sr4, sr5;
    reg [S_BITS-1:0] lv, lth;      // its state, latched while its decays are computed
    reg [S_BITS-1:0] lbias;        // its bias, latched with the state
    reg [R_BITS-1:0] lref;
    reg signed [ACC_W-1:0] acc_fin;  // its summed input
    reg              upd;          // integrate neuron upd_t now (7 cycles after its last item)
    reg [C_W-1:0]    upd_t;
    reg [T_BITS-1:0] post_xd;      // decayed post trace of the current STDP row (S_SYA*: the
                                   // pre trace of the arriving source)
    reg              post_spk;     // post spike of the current STDP row
    reg [C_W-1:0]    ev_m;         // S_SYA*: the arriving source of this row; S_RUN: the
                                   // source of the event at p1c
    reg              dense;        // the next learning step updates every synapse (weights or
                                   // bounds were written: out-of-bound weights get clamped)
    // events per (slot, population) (snn_history), read at two addresses every cycle, their
    // words one cycle after the address: cur_cnt at (cur, pop_sel_a), k_cnt at (the arrival
    // slot, the source of projection proj_sel). Written at cur_cnt's address.
    localparam integer CI_N = NSLOT * P_MAX;
    localparam integer CI_W = (CI_N > 2) ? $clog2(CI_N) : 1;
    wire [C_W-1:0]   cur_cnt, k_cnt;
    reg              in0_w;        // S_IN0: population pi's count is being read (the cycle
                                   // after entering S_IN0 or moving to the next population)
    reg              in_ok;        // S_IN: the head is a neuron of an input population
    reg              cnt_we;       // write a count at cnt_waddr:
    reg              cnt_zero;     // ... 0, else cur_cnt + 1

    assign busy     = (state != S_IDLE);
    // a weight / trace is written back to the address it was read from, in the cycle after
    // its last phase; the next read address is set only at the end of that cycle
    assign w_waddr  = w_raddr;
    assign tr_waddr = tr_raddr;
    assign stepping = busy && (state != S_CLR);
    assign waiting  = (state == S_IN) && in_empty;

    // ------------------------------------------------------------------ spike history
    reg              ev_we;
    reg [H_AW-1:0]   ev_waddr;
    reg [C_W-1:0]    ev_wdata;
    reg              ev_re;
    reg [H_AW-1:0]   ev_raddr;
    wire [C_W-1:0]   ev_rdata;
    reg              hs_we;
    reg [H_AW-1:0]   hs_waddr;
    reg              hs_wdata;
    reg              hs_re;
    reg [H_AW-1:0]   hs_raddr;
    wire             hs_rdata;

    // ------------------------------------------------------------------ table views
    // geometry and flags of every entry come from the core's flip-flop copies (selected
    // here); the parameters of the population / projection being worked on are loaded from
    // the table RAMs into registers (S_LDP, S_LDS)
    reg              in_stdp;     // in the STDP pass (S_STDP .. S_SYBS)
    reg              in_inp;      // taking the inputs (S_IN)
    wire [PP_W-1:0]  pop_sel_a;   // population pi / input population of the head / STDP target
    wire [PP_W-1:0]  pop_sel_b;   // source of projection k
    // the projection in use is k in every state: in the neuron pass (S_RUN, where k is free
    // after S_PLST) k holds nl_k[li], set with li, so no state decode precedes the views
    wire [PR_W-1:0]  proj_sel = k[PR_W-1:0];
    wire [31:0] a_off    = {{(32-C_W){1'b0}}, pc_off[pop_sel_a*C_W +: C_W]};
    wire [31:0] a_size   = {{(32-C_W){1'b0}}, pc_size[pop_sel_a*C_W +: C_W]};
    wire [31:0] a_flags  = {29'd0, pc_flags[pop_sel_a*3 +: 3]};
    wire [31:0] b_off    = {{(32-C_W){1'b0}}, pc_off[pop_sel_b*C_W +: C_W]};
    wire [31:0] b_size   = {{(32-C_W){1'b0}}, pc_size[pop_sel_b*C_W +: C_W]};
    // SIZE == 0 per population, then selected (no comparator behind the multiplexer)
    wire [P_MAX-1:0] pc_empty;
    genvar pe;
    generate for (pe = 0; pe < P_MAX; pe = pe + 1) begin : g_empty
        assign pc_empty[pe] = pc_size[pe*C_W +: C_W] == {C_W{1'b0}};
    end endgenerate
    // population pi's FLAGS.INPUT and emptiness for the passes over the populations (S_MAP,
    // S_IN0, S_POP, where pop_sel_a is pi): selected by pi alone, so the loop's enables do
    // not wait for pop_sel_a's choice by k and the input head (the iCE40's critical path)
    wire [PP_W-1:0] pi_sel   = pi[PP_W-1:0];
    wire        p_input  = pc_flags[pi_sel*3 + `SNN_POP_FLAG_INPUT_BIT];
    wire        p_empty  = pc_empty[pi_sel];
    wire [31:0] r_src    = {{(32-PP_W){1'b0}}, rc_src[proj_sel*PP_W +: PP_W]};
    wire [31:0] r_tgt    = {{(32-PP_W){1'b0}}, rc_tgt[proj_sel*PP_W +: PP_W]};
    wire [31:0] r_delay  = {{(31-SL_W){1'b0}}, rc_delay[proj_sel*(SL_W+1) +: SL_W+1]};
    wire [31:0] r_flags  = {29'd0, rc_flags[proj_sel*3 +: 3]};
    // loaded parameters: the population's neuron (S_LDP), the projection's STDP (S_LDS).
    // Parameters needed one at a time (the three decays, the trace decays, the STDP
    // amplitudes) are not copied: they are read from the table RAM two cycles before their
    // use, and its read data is the register (no flip-flops of their own)
    reg  [R_BITS-1:0] a_ref;
    reg               a_sub, a_out;  // FLAGS.SUBTRACT, FLAGS.OUTPUT of the population (S_LDP)
    reg  [S_BITS-1:0] a_thr, a_vres, a_aplus;
    reg  [W_BITS-1:0] r_wmin, r_wmax;
    reg  [SYN_AW-1:0] r_wb;        // W_BASE of the STDP projection
    reg  [TR_AW-1:0]  r_trb_r;
    wire [31:0]       r_trb = {{(32-TR_AW){1'b0}}, r_trb_r};
    reg  [3:0]        ld_n;        // next field to read
    // population: REFRACTORY, THRESHOLD, V_RESET, ADAPT_PLUS, PROJ_FIRST, PROJ_COUNT;
    // projection: W_BASE, W_MIN, W_MAX, TR_BASE: the next field is ld_n + 1 but after the
    // first and (population) after V_RESET (the runs THRESHOLD .. V_RESET, ADAPT_PLUS ..
    // PROJ_COUNT and W_MIN .. TR_BASE are consecutive fields: tests/test_memory_map.py)
    // (DELAYED_RESET: every field from THRESHOLD to C2, the population's last: C1, V_INIT
    // (unused) and C2 too; the two constants are the only change, so that without it the
    // logic is the same)
    localparam [3:0]  LDP_LAST = (DELAYED_RESET != 0) ? `SNN_POP_C2 : `SNN_POP_PROJ_COUNT;
    localparam [3:0]  LDP_VRN  = (DELAYED_RESET != 0) ? `SNN_POP_V_RESET + 4'd1 : `SNN_POP_ADAPT_PLUS;
    wire [3:0]        ld_last = (state == S_LDP) ? LDP_LAST : `SNN_PROJ_TR_BASE;
    wire [3:0]        ld_nx = (state == S_LDP)
                              ? ((ld_n == `SNN_POP_REFRACTORY) ? `SNN_POP_THRESHOLD
                                 : ((ld_n == `SNN_POP_V_RESET) ? LDP_VRN : ld_n + 4'd1))
                              : ((ld_n == `SNN_PROJ_W_BASE) ? `SNN_PROJ_W_MIN : ld_n + 4'd1);
    reg               ld_v1, ld_v2;  // a read issued one / two cycles ago
    reg  [3:0]        ld_f1, ld_f2;  // its field
    wire [31:0] t32      = {{(32-C_W){1'b0}}, t};
    wire [31:0] j32      = {{(32-C_W){1'b0}}, j};
    // W_BASE of the event at p1c: read from the table at its p1 stage (wb_re)
    wire [31:0] p1_wb32  = {{(32-SYN_AW){1'b0}}, tab_proj_rdata[SYN_AW-1:0]};
    // one narrow multiplier for the row offset source * SIZE[target], shared by routing
    // (the event's source, registered in ev_m at p1b) and the STDP pass (source j; a row's
    // source ev_m). Its select is registered from the state of the last cycle (a weight
    // address is never issued in a state's first cycle: S_SYB / S_SYA come before their
    // synapses, S_RUN's first weight read is in its 4th)
    reg              ms_j;        // j (dense pass, columns), else ev_m (rows, neuron pass)
    (* keep *) wire [C_W-1:0] mul_s = ms_j ? j : ev_m;  // (keep: as is)
    // its other operand is the target population's SIZE, registered while the parameters are
    // loaded (S_LDP, S_LDS): a multiplier (a combinational DSP) takes its operands from
    // registers, at most through one multiplexer
    (* keep *) reg [C_W-1:0] m_size;
    reg  [C_W-1:0]   n_size;  // the source's SIZE (S_LDS), for the STDP pass
    reg              r_soft;  // FLAGS.SOFT of the STDP projection (S_LDS), for the same reason
    (* keep *) wire [2*C_W-1:0] mul_p = mul_s * m_size;  // (keep: the address adder stays
                                                          // out of the DSP)
    wire [31:0]      row32   = {{(32-2*C_W){1'b0}}, mul_p};
    // one weight-address adder: routing (W_BASE of the event + source * SIZE + t of the
    // item) or STDP (W_BASE + j * SIZE + t)
    wire        wa_run   = (state == S_RUN);
    wire [31:0] w_a      = (wa_run ? p1_wb32 : {{(32-SYN_AW){1'b0}}, r_wb}) + row32
                           + (wa_run ? {{(32-C_W){1'b0}}, p1c_t} : t32);
    // one trace-address adder: TR_BASE + (post: source SIZE) + index: the pre trace of j
    // (S_TPRE, S_SYN ph 3, S_SYBS) or of an arriving event (S_SYA), the post trace of j
    // (S_TPOST) or of the row t (S_SYN ph 0, S_SYAS)
    wire        ta_row   = (state == S_SYN && ph == 4'd0) || (state == S_SYAS);
    wire        ta_post  = (state == S_TPOST) || ta_row;
    wire [31:0] tr_a     = r_trb + (ta_post ? b_size : 32'd0)
                           + ((state == S_SYA) ? {{(32-C_W){1'b0}}, ev_rdata} : (ta_row ? t32 : j32));

    // slot of the spikes that arrive now through projection k: (cur - delay) mod NSLOT
    wire [SL_W:0] delay_w = r_delay[SL_W:0];
    wire [SL_W:0] cur_w   = {1'b0, cur};
    wire [SL_W:0] dslot_w = (cur_w >= delay_w) ? (cur_w - delay_w)
                                               : (cur_w + NSLOT[SL_W:0] - delay_w);
    wire [SL_W-1:0] dslot = dslot_w[SL_W-1:0];

    // verilator lint_off UNUSEDSIGNAL
    // (slot, index) addresses are concatenations when the inner count is a power of two (an
    // index is always below it), so no adder follows the offset adders
    function automatic [H_AW-1:0] haddr;  // history / event address of (slot, index)
        input [SL_W-1:0] slot;
        input [31:0] idx;
        reg [31:0] a;
        begin
            if (N_MAX == (1 << N_AW))
                a = {{(32-SL_W-N_AW){1'b0}}, slot, idx[N_AW-1:0]};
            else
                a = {{(32-SL_W){1'b0}}, slot} * N_MAX + idx;
            haddr = a[H_AW-1:0];
        end
    endfunction

    function automatic [31:0] cidx;  // count table index of (slot, population)
        input [SL_W-1:0] slot;
        input [31:0] pop;
        begin
            if (P_MAX == (1 << PP_W))
                cidx = {{(32-SL_W-PP_W){1'b0}}, slot, pop[PP_W-1:0]};
            else
                cidx = {{(32-SL_W){1'b0}}, slot} * P_MAX + {{(32-PP_W){1'b0}}, pop[PP_W-1:0]};
        end
    endfunction
    // verilator lint_on UNUSEDSIGNAL

    wire [31:0]     kc_a      = cidx(dslot, r_src);
    reg  [PR_W:0]   k_end;      // PROJ_FIRST + PROJ_COUNT of the population (S_LDP)
    // one read port for this step's counts: the input population of the head (S_IN), the
    // population being updated (pi), or projection k's target (STDP): pop_sel_a's choice
    wire [31:0]     cc_a      = cidx(cur, {{(32-PP_W){1'b0}}, pop_sel_a});
    // a count is written at cur_cnt's address (the clear pass: clr)
    wire [CI_W-1:0] cnt_waddr = (state == S_CLR) ? clr[CI_W-1:0] : cc_a[CI_W-1:0];

    snn_history #(.H_N(H_N), .H_AW(H_AW), .C_W(C_W), .CI_N(CI_N), .CI_W(CI_W)) u_history (
        .clk(clk),
        .ev_we(ev_we), .ev_waddr(ev_waddr), .ev_wdata(ev_wdata),
        .ev_re(ev_re), .ev_raddr(ev_raddr), .ev_rdata(ev_rdata),
        .hs_we(hs_we), .hs_waddr(hs_waddr), .hs_wdata(hs_wdata),
        .hs_re(hs_re_x), .hs_raddr(hs_raddr_x), .hs_rdata(hs_rdata),
        .cnt_we(cnt_we), .cnt_zero(cnt_zero), .cnt_waddr(cnt_waddr),
        .cnt_raddr_a(cc_a[CI_W-1:0]), .cnt_raddr_b(kc_a[CI_W-1:0]),
        .cnt_rdata_a(cur_cnt), .cnt_rdata_b(k_cnt));

    // one adder per event / history address port, its operands chosen by the state:
    // event reads: (cur, SRC + j) input clearing, (dslot, SRC + j) routing, (dslot, SRC + ti)
    // STDP rows, (cur, TGT + ti) STDP columns; event writes: (cur, pop + count);
    // history reads: (cur, index) input, (dslot, SRC + j) pre, (cur, TGT + j / t) post
    wire            ea_cur    = (state == S_IN0) || (state == S_SYB);
    wire [H_AW-1:0] ev_ra     = haddr(ea_cur ? cur : dslot, (ea_cur ? a_off : b_off)
                                  + {{(32-C_W){1'b0}}, (state == S_SYA || state == S_SYB) ? ti : j});
    wire [H_AW-1:0] ev_wa     = haddr(cur, a_off + {{(32-C_W){1'b0}}, cur_cnt});
    wire            hr_pre    = (state == S_TPRE) || (state == S_SYN && ph == 4'd3)
                                || (state == S_SYBS);
    wire            hr_t      = (state == S_SYN && ph == 4'd0) || (state == S_SYAS);
    wire [H_AW-1:0] hs_ra     = haddr(hr_pre ? dslot : cur, (state == S_IN) ? {16'd0, lk_idx}
                                  : ((hr_pre ? b_off : a_off) + (hr_t ? t32 : j32)));
    wire [31:0]     g_now     = a_off + {{(32-C_W){1'b0}}, upd_t};  // neuron being updated
    wire [31:0]     g_iss     = a_off + {{(32-C_W){1'b0}}, ti};     // neuron being issued
    // one comparator per loop index for every pass: j runs over the sources (over the
    // targets in S_TPOST), t over the targets
    // (the STDP pass compares with the sizes registered in S_LDS, m_size and n_size, not
    // with the views; S_MAP walks population pi)
    // j_more and the choice of the event-driven STDP pass (ev_pass) are registered: j changes
    // at least a cycle before they are used (S_TPRE / S_TPOST ph 3, a synapse's last phase),
    // the counts and sizes stay for the whole projection
    reg             j_more, ev_pass;
    always @(posedge clk) begin
        j_more  <= (state == S_TPOST) ? (j + 1'b1 < m_size) : (j + 1'b1 < n_size);
        ev_pass <= !dense && {k_cnt, 1'b0} <= {1'b0, n_size}
                   && {cur_cnt, 1'b0} <= {1'b0, m_size};
    end
    wire            t_more    = t + 1'b1 < m_size;

    // ------------------------------------------------------------------ the delayed reset
    // DELAYED_RESET (docs/hardware.md, "The delayed reset"): C1, C2 are loaded with the
    // population's parameters (S_LDP). A neuron's first and second items, one cycle after
    // their issue (p1), read its history bits of the last two steps (slots cur - 1, cur - 2;
    // the history read port is idle in the neuron pass, whose writes go to slot cur), which
    // arrive at p1c; from p2 on the item carries C1 / C2 (or 0, no spike) down to p3, where
    // the neuron's reset input is summed beside its weights (r_acc) and finished with its
    // sum (r_fin, with acc_fin): the integration takes acc_fin + r_fin, the integers the
    // self-synapses of the lowered form add. Without it: none of this logic.
    wire              hs_re_x;
    wire [H_AW-1:0]   hs_raddr_x;
    wire [ACC_W-1:0]  x_in;          // the neuron's summed input, for snn_integrate
    generate if (DELAYED_RESET != 0) begin : g_dr
        reg  [S_BITS-1:0] c1, c2;
        reg  [1:0]        n_it;      // items of the neuron at p1 before this one (sat. 2)
        reg  [1:0]        rs1b, rs1c;  // the item's read at p1b / p1c: 1 s1, 2 s2, 0 none
        reg               dr_re;
        reg  [H_AW-1:0]   dr_raddr;
        reg  [S_BITS-1:0] rc2, rc2b, rc3;  // its reset input at p2, p2b, p3
        reg  signed [S_BITS+1:0] r_acc, r_fin;
        wire [31:0] cur32 = {{(32-SL_W){1'b0}}, cur};
        wire [31:0] sm1   = (cur32 >= 1) ? cur32 - 1 : cur32 + NSLOT - 1;
        wire [31:0] sm2   = (cur32 >= 2) ? cur32 - 2 : cur32 + NSLOT - 2;
        wire        rd    = state == S_RUN && p1_valid && n_it != 2'd2;
        assign hs_re_x    = hs_re || dr_re;
        assign hs_raddr_x = dr_re ? dr_raddr : hs_raddr;
        assign x_in = acc_fin + {{(ACC_W-S_BITS-2){r_fin[S_BITS+1]}}, r_fin};
        always @(posedge clk) begin
            if (ld_v2 && state == S_LDP && ld_f2 == `SNN_POP_C1) c1 <= tab_pop_rdata[S_BITS-1:0];
            if (ld_v2 && state == S_LDP && ld_f2 == `SNN_POP_C2) c2 <= tab_pop_rdata[S_BITS-1:0];
            dr_re <= rd;
            dr_raddr <= haddr((n_it == 2'd0) ? sm1[SL_W-1:0] : sm2[SL_W-1:0],
                              a_off + {{(32-C_W){1'b0}}, p1_t});
            rs1b <= rd ? n_it + 2'd1 : 2'd0;
            rs1c <= rs1b;
            rc2 <= !hs_rdata ? {S_BITS{1'b0}}
                   : ((rs1c == 2'd1) ? c1 : ((rs1c == 2'd2) ? c2 : {S_BITS{1'b0}}));
            rc2b <= rc2; rc3 <= rc2b;
            if (rst) begin
                n_it <= 2'd0; r_acc <= 0; dr_re <= 1'b0; rs1b <= 2'd0;
            end else begin
                if (state == S_RUN && p1_valid)
                    n_it <= p1_last ? 2'd0 : ((n_it == 2'd2) ? 2'd2 : n_it + 2'd1);
                if (state == S_RUN && p3_valid) begin
                    if (p3_last) begin
                        r_fin <= r_acc + {{2{rc3[S_BITS-1]}}, rc3}; r_acc <= 0;
                    end else begin
                        r_acc <= r_acc + {{2{rc3[S_BITS-1]}}, rc3};
                    end
                end
            end
        end
    end else begin : g_nodr
        assign hs_re_x    = hs_re;
        assign hs_raddr_x = hs_raddr;
        assign x_in       = acc_fin;
    end endgenerate

    // ------------------------------------------------------------------ arithmetic blocks
    wire              n_spike;
    wire [S_BITS-1:0] n_v, n_i, n_th;
    wire [R_BITS-1:0] n_ref;

    // one multiplier for the three decays of a neuron, one per cycle: its state is read with
    // its last item and arrives 2 cycles later (sr2), each decay's operand is registered
    // (dec_xq: i at sr2, v at sr3, theta at sr4) and multiplied the cycle after, by the
    // decay read from the table two cycles before (ALPHA at sr1, BETA at sr2, ADAPT_DECAY at
    // sr3): dec_i at sr3, dec_v at sr4, dec_th at sr5
    reg  [S_BITS-1:0] dec_i, dec_v, dec_th;
    (* keep *) reg [S_BITS-1:0] dec_xq;  // a fabric flip-flop, as tf_q below
    wire [D_BITS:0]   dec_d = tab_pop_rdata[D_BITS:0];
    wire [S_BITS-1:0] dec_y;

    snn_decay #(.X_W(S_BITS), .D_BITS(D_BITS), .SIGNED(1)) u_decay (
        .x(dec_xq), .d(dec_d), .y(dec_y));

    // the neuron update in two cycles: snn_integrate at upd, its results registered, snn_fire
    // and the writes at upd2. The next neuron's state arrives in lv / lref / lth at the
    // earliest with upd2 (a neuron takes at least 3 items), dec_th and acc_fin a cycle later,
    // so only what snn_fire needs of lref and the integration is kept (q_*)
    wire              n_act;
    wire [S_BITS-1:0] n_v1;
    wire [S_BITS:0]   n_thr;
    reg               q_act;
    reg  [S_BITS-1:0] q_v1, q_i;
    reg  [S_BITS:0]   q_thr;
    reg  [R_BITS-1:0] q_ref;
    reg               upd2;         // finish neuron upd_t now (the cycle after upd)

    snn_integrate #(.S_BITS(S_BITS), .ACC_W(ACC_W), .R_BITS(R_BITS)) u_integrate (
        .state_v(lv), .state_refrac(lref), .state_theta(lth),
        .event_x(x_in), .decay_i(dec_i), .decay_v(dec_v),
        .param_threshold(a_thr), .param_bias(lbias),
        .active(n_act), .state_next_i(n_i), .v_int(n_v1), .thr(n_thr));

    snn_fire #(.S_BITS(S_BITS), .R_BITS(R_BITS)) u_fire (
        .active(q_act), .v_int(q_v1), .thr(q_thr), .state_refrac(q_ref),
        .decay_theta(dec_th), .param_v_reset(a_vres), .param_adapt_plus(a_aplus),
        .param_refractory(a_ref), .param_subtract(a_sub),
        .spike(n_spike), .state_next_v(n_v), .state_next_refrac(n_ref),
        .state_next_theta(n_th));

    wire [T_BITS-1:0] tr_xd, tr_xn;
    // block-RAM words registered before any arithmetic (on the ECP5 a core's block RAMs sit far
    // from its logic, and the weights go through a 32-to-1 read multiplexer): the weight (the
    // neuron pass's p3 stage; a synapse's ph 5, kept until its write) and a trace (ph 2 of the
    // trace pass; the pre trace at a synapse's ph 5)
    // (keep: fabric flip-flops, not a DSP's input register, as dec_xq below: the iCE40's
    // build would time such a DSP's multiplier as a pseudo-register path)
    reg  [W_BITS:0]   w_q;
    (* keep *) reg [T_BITS-1:0] tr_q;

    snn_trace #(.T_BITS(T_BITS), .T_FRAC(T_FRAC), .D_BITS(D_BITS)) u_trace (
        .state_x(tr_q),  // the trace word, registered at ph 2
        .param_decay(tab_proj_rdata[D_BITS:0]),  // PRE_DECAY / POST_DECAY, read at ph 0
        .param_nearest(r_flags[`SNN_PROJ_FLAG_NEAREST_BIT]), .event_spike(hs_rdata),
        .trace_decayed(tr_xd), .state_next_x(tr_xn));

    // one product unit for both terms of a synapse, registered at every step so that no cycle
    // holds a multiplier behind a subtraction, another multiplier or a wide addition (they are
    // combinational DSPs, untimed by nextpnr): the bound factor at ph 6 (potentiation) and
    // ph 7 (depression) into f_q, trace x factor at ph 7 and ph 8 into tf_q, its partial
    // products with the amplitude at ph 8 and ph 9 into pp_*, their rounded sum at ph 9 (kept
    // in term_up) and ph 10 (kept in term_dn); their difference at ph 11 (snn_stdp_dw, into
    // dw_q); the weight is written at ph 12 (snn_stdp: w + dw, clamped). A term is the PW-bit
    // product shifted right by SHS: its low TW bits hold it exactly (the rest is sign), so the
    // registers and snn_stdp_dw's subtraction are TW bits wide.
    localparam integer FW  = (W_BITS + 1 > FRAC + 2) ? W_BITS + 1 : FRAC + 2;
    localparam integer PW  = T_BITS + FW + A_BITS + 2;
    localparam integer SHS = STDP_FRAC + T_FRAC + FRAC;
    localparam integer TW  = (PW - SHS > W_BITS + 2) ? PW - SHS : W_BITS + 3;
    localparam integer TF_W = T_BITS + FW + 1;
    localparam integer TX  = (TF_W > 17) ? TF_W : 17;
    localparam integer AX  = (A_BITS > 17) ? A_BITS : 17;
    wire              b_dn = (ph == 4'd7);  // the depression term's bound factor
    reg               xp_q;  // trace x factor takes post_xd (else the trace RAM's word), set
                             // the cycle before: potentiation uses the pre trace, depression
                             // the post trace, and a row's pre trace is post_xd (S_SYAS)
    wire              s_a  = (state == S_SYAS);  // a row of an arriving source
    wire              s_b  = (state == S_SYBS);  // a column of a spiking target
    wire signed [FW-1:0] s_f;
    // (* keep *): fabric flip-flops and wires as written, not a DSP's own registers or a DSP
    // cascade (a DSP with registers is timed by nextpnr without its multiplier, see
    // docs/hardware.md)
    (* keep *) reg signed [FW-1:0] f_q;
    (* keep *) wire signed [TF_W-1:0] s_tf;
    (* keep *) reg signed [TF_W-1:0] tf_q;
    (* keep *) wire [31:0] s_pll;
    (* keep *) wire [AX-1:0] s_plh;
    (* keep *) wire signed [TX+AX-16:0] s_ph;
    (* keep *) reg [31:0] pll_q;
    (* keep *) reg [AX-1:0] plh_q;
    (* keep *) reg signed [TX+AX-16:0] ph_q;
    wire signed [PW-1:0] s_term;
    reg  signed [TW-1:0] term_up, term_dn;
    wire [W_BITS-1:0] s_w;

    snn_stdp_bound #(.W_BITS(W_BITS), .FRAC(FRAC)) u_bound (
        .state_w(w_q[W_BITS-1:0]), .bound(b_dn ? r_wmin : r_wmax), .dir_up(!b_dn),
        .param_soft(r_soft), .f(s_f));

    snn_stdp_factor #(.W_BITS(W_BITS), .T_BITS(T_BITS), .FRAC(FRAC)) u_factor (
        .trace(xp_q ? post_xd : tr_q), .f(f_q), .tf(s_tf));

    snn_stdp_product #(.T_BITS(T_BITS), .A_BITS(A_BITS), .FW(FW)) u_product (
        .tf(tf_q), .amplitude(tab_proj_rdata[A_BITS-1:0]),  // A_PLUS / A_MINUS, read at
        .p_ll(s_pll), .p_lh(s_plh), .p_h(s_ph));              // ph 6 / ph 7

    snn_stdp_term #(.W_BITS(W_BITS), .T_BITS(T_BITS), .A_BITS(A_BITS), .FRAC(FRAC),
                    .T_FRAC(T_FRAC), .STDP_FRAC(STDP_FRAC)) u_term (
        .p_ll(pll_q), .p_lh(plh_q), .p_h(ph_q), .term(s_term));

    // the terms are registered already gated by the events (zero without one: the
    // registers' synchronous reset, no multiplexer before the subtraction)
    wire              s_pre  = s_a || (!s_b && hs_rdata);
    wire              s_post = s_a ? hs_rdata : post_spk;
    wire signed [W_BITS+2:0] s_dw;
    reg  signed [W_BITS+2:0] dw_q;  // the weight change (ph 11), added and clamped at ph 12

    snn_stdp_dw #(.W_BITS(W_BITS), .PW(TW)) u_dw (
        .event_pre(1'b1), .event_post(1'b1), .term_up(term_up), .term_down(term_dn),
        .dw(s_dw));
    snn_stdp #(.W_BITS(W_BITS)) u_stdp (
        .state_w(w_q[W_BITS-1:0]), .param_plastic(w_q[W_BITS]), .dw(dw_q),
        .param_w_min(r_wmin), .param_w_max(r_wmax), .state_next_w(s_w));

    // ------------------------------------------------------------------ table selects
    // (the STDP pass and the input states are flagged by registers set and cleared with the
    // moves in and out: one-bit selects, no decode of the state)
    assign pop_sel_a = in_stdp ? r_tgt[PP_W-1:0] : (in_inp ? lk_pop : pi[PP_W-1:0]);
    assign pop_sel_b = r_src[PP_W-1:0];

    // the count writes (mirror the machine below): the clear pass zeroes every word, S_IN0
    // zeroes population pi's at cur once its old input events are forgotten, S_POP the
    // updated population's; S_IN and a spike in the neuron pass count one
    always @* begin
        cnt_we = 1'b0; cnt_zero = 1'b1;
        case (state)
            S_CLR:  cnt_we = map_clr && clr_lt(clr, CI_N);
            S_IN0:  cnt_we = pi < n_pop && !in0_w
                             && !(p_input && j < cur_cnt);
            S_IN:   begin cnt_we = ph == 4'd2 && in_ok && !hs_rdata; cnt_zero = 1'b0; end
            S_POP:  cnt_we = !(pi >= n_pop) && !(p_input || p_empty);
            S_RUN:  begin cnt_we = upd2 && n_spike; cnt_zero = 1'b0; end
            default: ;
        endcase
    end

    // ------------------------------------------------------------------ the machine
    always @(posedge clk) begin
        st_re <= 1'b0; st_we <= 1'b0; w_re <= 1'b0; w_we <= 1'b0;
        ms_j <= (state == S_SYN || state == S_SYB || state == S_SYBS);
        tr_re <= 1'b0; tr_we <= 1'b0; ev_re <= 1'b0; ev_we <= 1'b0;
        hs_re <= 1'b0; hs_we <= 1'b0; in_pop <= 1'b0; out_push <= 1'b0; tab_re <= 1'b0;
        wb_re <= 1'b0; done <= 1'b0; in_err <= 1'b0; syn_event <= 1'b0;
        step_wrap <= 1'b0; pm_we <= 1'b0; in0_w <= 1'b1;
        if (rst) begin
            state <= S_IDLE; cur <= {SL_W{1'b0}}; step_count <= 15'd0; steps_left <= 32'd0;
            p1_valid <= 1'b0; p1b_valid <= 1'b0; p1c_valid <= 1'b0; p2_valid <= 1'b0;
            p2b_valid <= 1'b0; p3_valid <= 1'b0; srp <= 1'b0; sr0 <= 1'b0; sr1 <= 1'b0;
            sr2 <= 1'b0; sr3 <= 1'b0; sr4 <= 1'b0; sr5 <= 1'b0; upd <= 1'b0;
            upd2 <= 1'b0; in_stdp <= 1'b0; in_inp <= 1'b0;
            dense <= 1'b1;
            map_ok <= 1'b0;
        end else begin
            case (state)
            S_IDLE: begin
                if (cmd_clear) begin
                    state <= S_CLR; clr <= {CL_W{1'b0}}; cur <= {SL_W{1'b0}}; step_count <= 15'd0;
                    map_clr <= 1'b1;
                end else if (cmd_run) begin
                    steps_left <= run_steps;
                    if (run_steps == 32'd0) done <= 1'b1;
                    else begin
                        // a stale map: zeroed (the clear pass, map only), then rebuilt
                        state <= map_ok ? S_IN0 : S_CLR; map_clr <= 1'b0; clr <= {CL_W{1'b0}};
                        pi <= {(PP_W+1){1'b0}}; j <= {C_W{1'b0}};
                    end
                end
            end
            // the reset pass (map_clr), or only the map's zeroing before a rebuild (!map_clr)
            S_CLR: begin
                if (map_clr && clr_lt(clr, H_N)) begin
                    hs_we <= 1'b1; hs_waddr <= clr32[H_AW-1:0]; hs_wdata <= 1'b0;
                end
                // every neuron state and map entry 0 (S_MAP then writes V_INIT and the map
                // entries of the populations' neurons)
                if (clr_lt(clr, N_MAX)) begin
                    st_we <= map_clr; st_waddr <= clr32[N_AW-1:0];
                    st_wv <= {S_BITS{1'b0}};
                    st_wi <= {S_BITS{1'b0}}; st_wref <= {R_BITS{1'b0}};
                    st_wth <= {S_BITS{1'b0}};
                    pm_we <= 1'b1; pm_waddr <= clr32[N_AW-1:0]; pm_wdata <= {(PP_W+1){1'b0}};
                end
                if (map_clr && clr_lt(clr, TR_MAX)) begin
                    tr_we <= 1'b1; tr_raddr <= clr32[TR_AW-1:0]; tr_wdata <= {2*T_BITS{1'b0}};
                end
                clr <= clr + 1'b1;
                if (clr32 == CLR_N - 1) begin
                    state <= S_MAP; ph <= 4'd0;
                    pi <= {(PP_W+1){1'b0}}; t <= {C_W{1'b0}}; ti <= {C_W{1'b0}};
                end
            end
            // the population map (and, after the reset pass, V_INIT): per population, ph 0
            // reads V_INIT, ph 1 registers the SIZE, ph 2 writes neuron ti (a_off + ti; t
            // counts along for the end test, t_more) each cycle
            S_MAP: begin
                case (ph)
                4'd0: begin
                    if (pi >= n_pop) begin
                        map_ok <= 1'b1; pi <= {(PP_W+1){1'b0}}; j <= {C_W{1'b0}};
                        state <= map_clr ? S_IDLE : S_IN0;
                    end else if (p_empty) begin
                        pi <= pi + 1'b1;
                    end else begin
                        tab_re <= 1'b1; tab_proj <= 1'b0; tab_field <= `SNN_POP_V_INIT;
                        tab_entry <= {{(PT_W-PP_W){1'b0}}, pi[PP_W-1:0]};
                        ph <= 4'd1;
                    end
                end
                4'd1: begin m_size <= a_size[C_W-1:0]; ph <= 4'd2; end
                default: begin
                    pm_we <= 1'b1; pm_waddr <= g_iss[N_AW-1:0];
                    pm_wdata <= {1'b1, pi[PP_W-1:0]};
                    if (map_clr) begin
                        st_we <= 1'b1; st_waddr <= g_iss[N_AW-1:0];
                        st_wv <= tab_pop_rdata[S_BITS-1:0];
                        st_wi <= {S_BITS{1'b0}}; st_wref <= {R_BITS{1'b0}};
                        st_wth <= {S_BITS{1'b0}};
                    end
                    if (t_more) begin
                        t <= t + 1'b1; ti <= ti + 1'b1;
                    end else begin
                        t <= {C_W{1'b0}}; ti <= {C_W{1'b0}}; pi <= pi + 1'b1; ph <= 4'd0;
                    end
                end
                endcase
            end
            // forget the history bits of this slot's old input events
            S_IN0: begin
                p1_valid <= 1'b0; p1b_valid <= p1_valid; p1b_off <= p1_off;
                if (p1b_valid) begin
                    hs_we <= 1'b1; hs_waddr <= haddr(cur, {{(32-N_AW){1'b0}}, p1b_off}
                                                      + {{(32-C_W){1'b0}}, ev_rdata});
                    hs_wdata <= 1'b0;
                end
                if (pi < n_pop) begin
                    if (in0_w) begin
                        in0_w <= 1'b0;  // wait: population pi's count is being read
                    end else if (p_input && j < cur_cnt) begin
                        ev_re <= 1'b1; ev_raddr <= ev_ra;
                        p1_valid <= 1'b1; p1_off <= a_off[N_AW-1:0];
                        j <= j + 1'b1; in0_w <= 1'b0;
                    end else begin  // its count is zeroed (cnt_we) for this step's inputs
                        pi <= pi + 1'b1; j <= {C_W{1'b0}};
                    end
                end else if (!p1_valid && !p1b_valid) begin
                    state <= S_IN; ph <= 4'd0; in_inp <= 1'b1;
                end
            end
            S_IN: begin
                // ph 0: look at the head (and read its history bit), 1: RAM read (and its
                // population's lookup: in_ok), 2: take it unless it is a duplicate, 3: let the
                // registered pop take effect
                case (ph)
                4'd0: if (!in_empty) begin
                    if (in_data[`SNN_FIFO_MARK_BIT]) begin  // the end-of-step marker
                        in_pop <= 1'b1; state <= S_POP; pi <= {(PP_W+1){1'b0}};
                        in_inp <= 1'b0;
                    end else begin
                        hs_re <= 1'b1; hs_raddr <= hs_ra; ph <= 4'd1;
                    end
                end
                4'd1: begin in_ok <= lk_hit && a_flags[`SNN_POP_FLAG_INPUT_BIT]; ph <= 4'd2; end
                4'd2: begin
                    in_pop <= 1'b1; ph <= 4'd3;
                    if (in_ok && !hs_rdata) begin
                        ev_we <= 1'b1;
                        ev_waddr <= ev_wa;
                        ev_wdata <= lk_idx[C_W-1:0] - a_off[C_W-1:0];
                        hs_we <= 1'b1; hs_waddr <= haddr(cur, {16'd0, lk_idx}); hs_wdata <= 1'b1;
                    end else begin
                        in_err <= 1'b1;
                    end
                end
                default: ph <= 4'd0;
                endcase
            end
            S_POP: begin
                if (pi >= n_pop) begin
                    state <= S_STDP; k <= {(PR_W+1){1'b0}}; in_stdp <= 1'b1;
                end else if (p_input || p_empty) begin
                    pi <= pi + 1'b1;
                end else begin
                    t <= {C_W{1'b0}};
                    state <= S_LDP; ld_n <= `SNN_POP_REFRACTORY; ld_v1 <= 1'b0; ld_v2 <= 1'b0;
                end
            end
            // load the population's / projection's parameters kept in registers (ld_nx),
            // one per cycle
            S_LDP, S_LDS: begin
                m_size <= a_size[C_W-1:0]; n_size <= b_size[C_W-1:0];
                r_soft <= r_flags[`SNN_PROJ_FLAG_SOFT_BIT];
                if (state == S_LDP) begin
                    a_sub <= a_flags[`SNN_POP_FLAG_SUBTRACT_BIT];
                    a_out <= a_flags[`SNN_POP_FLAG_OUT_EN_BIT];
                end
                ld_v1 <= (ld_n <= ld_last); ld_f1 <= ld_n; ld_v2 <= ld_v1; ld_f2 <= ld_f1;
                if (ld_n <= ld_last) begin
                    tab_re <= 1'b1; tab_proj <= (state == S_LDS); tab_field <= ld_n;
                    tab_entry <= (state == S_LDS) ? {{(PT_W-PR_W){1'b0}}, k[PR_W-1:0]}
                                                  : {{(PT_W-PP_W){1'b0}}, pi[PP_W-1:0]};
                    ld_n <= ld_nx;
                end
                if (ld_v2 && state == S_LDP)
                    case (ld_f2)
                        `SNN_POP_REFRACTORY: a_ref   <= tab_pop_rdata[R_BITS-1:0];
                        `SNN_POP_THRESHOLD:  a_thr   <= tab_pop_rdata[S_BITS-1:0];
                        `SNN_POP_V_RESET:    a_vres  <= tab_pop_rdata[S_BITS-1:0];
                        `SNN_POP_ADAPT_PLUS: a_aplus <= tab_pop_rdata[S_BITS-1:0];
                        `SNN_POP_PROJ_FIRST: k       <= tab_pop_rdata[PR_W:0];
                        `SNN_POP_PROJ_COUNT: k_end   <= k + tab_pop_rdata[PR_W:0];  // FIRST + COUNT
                        default: ;
                    endcase
                if (ld_v2 && state == S_LDS)
                    case (ld_f2)
                        `SNN_PROJ_W_BASE:  r_wb    <= tab_proj_rdata[SYN_AW-1:0];
                        `SNN_PROJ_W_MIN:   r_wmin  <= tab_proj_rdata[W_BITS-1:0];
                        `SNN_PROJ_W_MAX:   r_wmax  <= tab_proj_rdata[W_BITS-1:0];
                        `SNN_PROJ_TR_BASE: r_trb_r <= tab_proj_rdata[TR_AW-1:0];
                        default: ;
                    endcase
                if (ld_v2 && ld_f2 == ld_last) begin
                    if (state == S_LDP) begin
                        state <= S_PLST; nl_n <= {(PR_W+1){1'b0}}; pl_v <= 1'b0;
                    end
                    else begin state <= S_TPRE; j <= {C_W{1'b0}}; ph <= 4'd0; end
                end
            end
            // the list of incoming projections with events at their arrival slot
            // (k_cnt is read at k: the count of the last cycle's k, pl_k, arrives)
            S_PLST: begin
                pl_v <= (k < k_end); pl_k <= k[PR_W-1:0];
                if (pl_v && k_cnt != {C_W{1'b0}}) begin
                    nl_k[nl_n[PR_W-1:0]] <= pl_k; nl_c[nl_n[PR_W-1:0]] <= k_cnt - 1'b1;
                    nl_n <= nl_n + 1'b1;
                end
                if (k < k_end) begin
                    k <= k + 1'b1;
                end else if (!pl_v) begin
                    state <= S_RUN; ti <= {C_W{1'b0}}; li <= {(PR_W+1){1'b0}};
                    k <= {1'b0, nl_k[0]}; lc_q <= nl_c[0];
                    j <= {C_W{1'b0}}; ni <= 2'd0; acc <= {ACC_W{1'b0}};
                end
            end
            // the neuron pass: issue -> event read -> event registered -> weight read ->
            // weight registered -> sum -> update, one item per cycle, neurons overlapping
            S_RUN: begin
                p1_valid <= 1'b0;
                p1b_valid <= p1_valid; p1b_ev <= p1_ev;
                p1b_last <= p1_last; p1b_t <= p1_t;
                p1c_valid <= p1b_valid; p1c_ev <= p1b_ev; p1c_last <= p1b_last; p1c_t <= p1b_t;
                p2_valid <= p1c_valid; p2_ev <= p1c_ev; p2_last <= p1c_last; p2_t <= p1c_t;
                p2b_valid <= p2_valid; p2b_ev <= p2_ev; p2b_last <= p2_last; p2b_t <= p2_t;
                p3_valid <= p2b_valid; p3_ev <= p2b_ev; p3_last <= p2b_last; p3_t <= p2b_t;
                w_q <= w_rdata;
                srp <= 1'b0; sr0 <= srp; sr1 <= sr0; sr2 <= sr1; sr3 <= sr2; sr4 <= sr3;
                sr5 <= sr4; upd <= 1'b0;
                upd2 <= upd;
                // st_raddr was set with the last item; the RAM samples it the cycle after sr0,
                // at whose end the next neuron's last item (3 items on at least) sets it
                if (sr0) st_re <= 1'b1;
                if (p1_valid) begin  // W_BASE of the item's projection, for p1c
                    wb_re <= 1'b1; wb_entry <= p1_k;
                end
                if (p1b_valid) ev_m <= ev_rdata;  // the event's source, for p1c
                // issue (a neuron starts only when the output FIFO has room for every
                // spike still in flight, so the update never waits)
                // (li + 1 <= nl_n while li < nl_n: the comparison is an equality)
                if (ti < m_size
                        && (ni != 2'd0 || li != 0 || j != 0 || !a_out || out_room)) begin
                    p1_valid <= 1'b1; p1_t <= ti; p1_k <= proj_sel;
                    p1_ev <= (li < nl_n);
                    if (li < nl_n) begin
                        ev_re <= 1'b1; ev_raddr <= ev_ra;
                        if (lc_q != {C_W{1'b0}}) begin
                            j <= j + 1'b1; lc_q <= lc_q - 1'b1;
                        end else begin
                            li <= li + 1'b1; j <= {C_W{1'b0}};
                            k <= {1'b0, nl_k[li[PR_W-1:0] + 1'b1]};
                            lc_q <= nl_c[li[PR_W-1:0] + 1'b1];
                        end
                    end
                    if (!(li < nl_n && (lc_q != {C_W{1'b0}} || li + 1'b1 != nl_n)) && ni == 2'd2)
                    begin  // the last item: read the state (at sr0), next neuron
                        p1_last <= 1'b1; srp <= 1'b1;
                        st_raddr <= g_iss[N_AW-1:0];
                        ti <= ti + 1'b1; li <= {(PR_W+1){1'b0}}; j <= {C_W{1'b0}}; ni <= 2'd0;
                        k <= {1'b0, nl_k[0]}; lc_q <= nl_c[0];
                    end else begin
                        p1_last <= 1'b0;
                        if (ni != 2'd2) ni <= ni + 2'd1;
                    end
                end else if (ti >= m_size && !p1_valid && !p1b_valid && !p1c_valid
                             && !p2_valid && !p2b_valid && !p3_valid && !upd && !upd2) begin
                    pi <= pi + 1'b1; state <= S_POP;
                end
                if (p1c_valid && p1c_ev) begin
                    w_re <= 1'b1;
                    w_raddr <= w_a[SYN_AW-1:0];
                end
                if (p3_valid) begin
                    if (p3_ev) syn_event <= 1'b1;
                    if (p3_last) begin
                        acc_fin <= acc + (p3_ev ? {{(ACC_W-W_BITS){w_q[W_BITS-1]}},
                                                   w_q[W_BITS-1:0]} : {ACC_W{1'b0}});
                        acc <= {ACC_W{1'b0}}; upd <= 1'b1; upd_t <= p3_t;
                    end else if (p3_ev) begin
                        acc <= acc + {{(ACC_W-W_BITS){w_q[W_BITS-1]}}, w_q[W_BITS-1:0]};
                    end
                end
                if (sr1 || sr2 || sr3) begin  // ALPHA for sr3, BETA for sr4, ADAPT_DECAY for sr5
                    tab_re <= 1'b1;
                    tab_field <= sr1 ? `SNN_POP_ALPHA : (sr2 ? `SNN_POP_BETA : `SNN_POP_ADAPT_DECAY);
                end
                if (sr2) begin
                    lv <= st_rv; lref <= st_rref; lth <= st_rth; lbias <= st_rbias;
                    dec_xq <= st_ri;
                end
                if (sr3) begin dec_xq <= st_rv; dec_i <= dec_y; end
                if (sr4) begin dec_xq <= st_rth; dec_v <= dec_y; end
                if (sr5) dec_th <= dec_y;
                if (upd) begin
                    q_act <= n_act; q_v1 <= n_v1; q_i <= n_i; q_thr <= n_thr; q_ref <= lref;
                end
                if (upd2) begin
                    st_we <= 1'b1; st_waddr <= g_now[N_AW-1:0];
                    st_wv <= n_v; st_wi <= q_i; st_wref <= n_ref; st_wth <= n_th;
                    hs_we <= 1'b1; hs_waddr <= haddr(cur, g_now); hs_wdata <= n_spike;
                    if (n_spike) begin
                        ev_we <= 1'b1;
                        ev_waddr <= ev_wa;
                        ev_wdata <= upd_t;
                        if (a_out) begin
                            out_push <= 1'b1;
                            out_data <= {1'b1, step_count, g_now[15:0]};
                        end
                    end
                end
            end
            S_STDP: begin
                if (k >= n_proj) begin
                    state <= S_NEXT; in_stdp <= 1'b0;
                    if (learn) dense <= 1'b0;  // every plastic weight is within its bounds
                end else if (r_flags[`SNN_PROJ_FLAG_STDP_BIT] && learn) begin
                    state <= S_LDS; ld_n <= `SNN_PROJ_W_BASE; ld_v1 <= 1'b0; ld_v2 <= 1'b0;
                end else begin
                    k <= k + 1'b1;
                end
            end
            S_TPRE, S_TPOST: begin
                if (ph == 4'd0) begin  // read the trace, the spike and the decay
                    tr_re <= 1'b1; hs_re <= 1'b1; ph <= 4'd1;
                    tab_re <= 1'b1;
                    tab_field <= (state == S_TPRE) ? `SNN_PROJ_PRE_DECAY : `SNN_PROJ_POST_DECAY;
                    tr_raddr <= tr_a[TR_AW-1:0];
                    hs_raddr <= hs_ra;
                end else if (ph == 4'd1) begin  // the RAMs sample the addresses
                    ph <= 4'd2;
                end else if (ph == 4'd2) begin  // the trace word registered (tr_q)
                    tr_q <= tr_rdata[T_BITS-1:0]; ph <= 4'd3;
                end else begin  // decay, add the spike, write back
                    tr_we <= 1'b1; tr_wdata <= {tr_xd, tr_xn};
                    ph <= 4'd0; j <= j + 1'b1;
                    if (state == S_TPRE && !j_more) begin
                        state <= S_TPOST; j <= {C_W{1'b0}};
                    end else if (state == S_TPOST && !j_more) begin
                        // rows and columns when at most half the sources arrive and half
                        // the targets spike (never slower than the dense pass then)
                        state <= ev_pass ? S_SYA : S_SYN;
                        ph <= 4'd0;
                        t <= {C_W{1'b0}}; j <= {C_W{1'b0}}; ti <= {C_W{1'b0}};
                    end
                end
            end
            S_SYN: begin
                case (ph)
                4'd0: begin  // fetch the row's post trace and spike
                    tr_re <= 1'b1; hs_re <= 1'b1; ph <= 4'd1;
                    tr_raddr <= tr_a[TR_AW-1:0];
                    hs_raddr <= hs_ra;
                end
                4'd1: ph <= 4'd2;
                4'd2: begin
                    post_xd <= tr_rdata[2*T_BITS-1:T_BITS]; post_spk <= hs_rdata;
                    j <= {C_W{1'b0}}; ph <= 4'd3;
                end
                4'd3: begin  // read synapse (t, j), its pre trace and arrival
                    w_re <= 1'b1; tr_re <= 1'b1; hs_re <= 1'b1; ph <= 4'd4;
                    w_raddr <= w_a[SYN_AW-1:0];
                    tr_raddr <= tr_a[TR_AW-1:0];
                    hs_raddr <= hs_ra;
                end
                4'd4, 4'd5, 4'd6, 4'd7, 4'd8, 4'd9, 4'd10, 4'd11: ph <= ph + 4'd1;  // product unit
                default: begin  // write the weight back
                    w_we <= 1'b1; w_wdata <= {w_q[W_BITS], s_w};
                    if (j_more) begin
                        j <= j + 1'b1; ph <= 4'd3;
                    end else if (t_more) begin
                        t <= t + 1'b1; ph <= 4'd0;
                    end else begin
                        k <= k + 1'b1; state <= S_STDP;
                    end
                end
                endcase
            end
            // event-driven STDP (after a dense pass, plastic weights stay within their bounds
            // and only synapses with a pre arrival or a post spike change): rows of the
            // arriving sources (pre = 1, every target), then columns of the spiking targets
            // (post = 1, every source without an arrival: those were done in the rows)
            S_SYA: begin  // row setup: the arriving source and its pre trace
                case (ph)
                4'd0: begin
                    if (ti < k_cnt) begin
                        ev_re <= 1'b1; ev_raddr <= ev_ra;
                        ph <= 4'd1;
                    end else begin
                        state <= S_SYB; ti <= {C_W{1'b0}};
                    end
                end
                4'd1: ph <= 4'd2;
                4'd2: begin
                    ev_m <= ev_rdata; tr_re <= 1'b1; ph <= 4'd3;
                    tr_raddr <= tr_a[TR_AW-1:0];
                end
                4'd3: ph <= 4'd4;
                default: begin
                    post_xd <= tr_rdata[2*T_BITS-1:T_BITS]; t <= {C_W{1'b0}};
                    state <= S_SYAS; ph <= 4'd3;
                end
                endcase
            end
            S_SYB: begin  // column setup: the spiking target
                case (ph)
                4'd0: begin
                    if (ti < cur_cnt) begin
                        ev_re <= 1'b1; ev_raddr <= ev_ra;
                        ph <= 4'd1;
                    end else begin
                        k <= k + 1'b1; state <= S_STDP;
                    end
                end
                4'd1: ph <= 4'd2;
                default: begin
                    t <= ev_rdata; j <= {C_W{1'b0}}; post_spk <= 1'b1;
                    state <= S_SYBS; ph <= 4'd3;
                end
                endcase
            end
            S_SYAS, S_SYBS: begin  // synapse (ev_m, t) of a row / (j, t) of a column
                case (ph)
                4'd3: begin  // the weight; row: post trace and spike of t; column: pre of j
                    w_re <= 1'b1; tr_re <= 1'b1; hs_re <= 1'b1; ph <= 4'd4;
                    w_raddr <= w_a[SYN_AW-1:0];
                    tr_raddr <= tr_a[TR_AW-1:0];
                    hs_raddr <= hs_ra;
                end
                4'd4, 4'd5, 4'd6, 4'd7, 4'd8, 4'd9, 4'd10, 4'd11: ph <= ph + 4'd1;  // product unit
                default: begin  // write the weight back (a column skips arrivals)
                    if (state == S_SYAS || !hs_rdata) begin
                        w_we <= 1'b1; w_wdata <= {w_q[W_BITS], s_w};
                    end
                    ph <= 4'd3;
                    if (state == S_SYAS) begin
                        if (t_more) t <= t + 1'b1;
                        else begin ti <= ti + 1'b1; state <= S_SYA; ph <= 4'd0; end
                    end else begin
                        if (j_more) j <= j + 1'b1;
                        else begin ti <= ti + 1'b1; state <= S_SYB; ph <= 4'd0; end
                    end
                end
                endcase
            end
            S_NEXT: begin
                cur <= (cur == D_MAX[SL_W-1:0]) ? {SL_W{1'b0}} : cur + 1'b1;
                step_count <= step_count + 15'd1;
                step_wrap  <= step_count == 15'h7FFF;
                steps_left <= steps_left - 32'd1;
                if (steps_left == 32'd1) begin
                    done <= 1'b1; state <= S_IDLE;
                end else begin
                    state <= S_IN0; pi <= {(PP_W+1){1'b0}}; j <= {C_W{1'b0}};
                end
            end
            default: begin state <= S_IDLE; in_stdp <= 1'b0; end
            endcase
            // a synapse's product unit, the same in the dense pass, rows and columns: the
            // weight and the pre trace arrive at ph 5 and are registered (w_q, tr_q: on the
            // ECP5 the block RAMs sit far from the arithmetic); each step is registered (see
            // u_bound .. u_term); the amplitudes are read two cycles before use, A_PLUS at
            // ph 6 for ph 8, A_MINUS at ph 7 for ph 9
            if (state == S_SYN || state == S_SYAS || state == S_SYBS) begin
                case (ph)
                4'd5: begin  // the weight and the pre trace registered (the weight kept)
                    w_q <= w_rdata; tr_q <= tr_rdata[2*T_BITS-1:T_BITS];
                end
                4'd6: begin  // the potentiation term's bound factor
                    f_q <= s_f; xp_q <= s_a;
                    tab_re <= 1'b1; tab_field <= `SNN_PROJ_A_PLUS;
                end
                4'd7: begin  // its trace x factor; the depression term's bound factor
                    tf_q <= s_tf; f_q <= s_f; xp_q <= !s_a;
                    tab_re <= 1'b1; tab_field <= `SNN_PROJ_A_MINUS;
                end
                4'd8: begin  // its partial products; the depression term's trace x factor
                    pll_q <= s_pll; plh_q <= s_plh; ph_q <= s_ph; tf_q <= s_tf;
                end
                4'd9: begin  // the potentiation term; the depression term's partial products
                    term_up <= s_post ? s_term[TW-1:0] : {TW{1'b0}};
                    pll_q <= s_pll; plh_q <= s_plh; ph_q <= s_ph;
                end
                4'd10: term_dn <= s_pre ? s_term[TW-1:0] : {TW{1'b0}};  // the depression term
                4'd11: dw_q <= s_dw;  // the weight change
                default: ;
                endcase
            end
            if (w_touched) dense <= 1'b1;
            if (geo_touched) map_ok <= 1'b0;
        end
    end

    // verilator lint_off UNUSEDSIGNAL
    wire unused_ok = ^{a_flags, r_flags, r_delay, r_src, r_tgt, r_trb, s_term,
                       a_off, b_off, b_size, a_size, in_data,
                       g_now, g_iss, w_a, tab_pop_rdata, tab_proj_rdata,
                       tr_a, dslot_w, kc_a, cc_a};
    // verilator lint_on UNUSEDSIGNAL

endmodule

`default_nettype wire
