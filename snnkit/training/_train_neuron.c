/* The neuron update of surrogate-gradient training, forward and backward, for one block of
   neurons and one (step, sample) row at a time (included by _train_kernels.c, which supplies
   the thread pool and the event sums).

   It is snnkit/neurons.py's neuron_step, item for item (docs/fixed-point.md "One time step"
   3-8), in two arithmetics: float32 ("float"), and the hardware's integers held in doubles
   ("fixed": saturation, decay (x*d + 2^(D-1)) >> D as floor(... * 2^-D), exact below 2^53).
   Gradients follow snnkit/training/arith.py: the spike's derivative is the surrogate of
   x = (v - threshold) * lsb (times lsb: the derivative with respect to v), the reset does not
   pass gradient through the spike (detached reset), saturation passes it only inside the
   range, floor passes it straight through. Build with -ffp-contract=off: the float update
   must round each product and sum as torch does.

   reset="delayed" (neurons.delayed_reset_inputs) adds c1 to the input one step after a spike
   and c2 two steps after; the last two steps' spikes ride in the top bits of the refractory
   counter's state (R_S1, R_S2), so they cross chunks and checkpoints with it. The inputs
   carry no gradient to the spikes; c1 and c2 get theirs (the input's, where the spike was). */

#include <math.h> /* floor */
#include <stdint.h>
#include <string.h>

/* No trapping floating-point: lets the branch-free updates below vectorise (both sides of a
   select are computed); the results are the same, nothing here enables FP traps. */
#pragma GCC optimize("no-trapping-math")

static double pow2(int e) { /* 2^e, exact (no libm) */
    double r = 1;
    for (; e > 0; e--) r *= 2;
    for (; e < 0; e++) r /= 2;
    return r;
}

/* Parameters [N] in the arithmetic's type and flags (snnkit.neurons.NeuronParams). */
typedef struct {
    const void *alpha, *beta, *threshold, *v_reset, *bias, *adapt_plus, *adapt_decay;
    int has_alpha, has_bias, subtract, refractory, adaptive;
    int decay_bits;      /* fixed */
    double lo, hi;       /* fixed: the state range */
    double lsb;          /* real value of one unit of v (1 in float) */
    int surrogate;       /* snnkit.surrogate.KIND */
    double slope;
    const void *c1, *c2; /* [N] reset="delayed": the inputs after a spike (else NULL) */
    int delayed;
    const int32_t *refr; /* [N] refractory periods per neuron, or NULL: refractory for all */
} tneuron_t;

/* Flag bits per (t, b, n), for the backward pass. */
#define F_SPIKE 1
#define F_ACTIVE 2  /* not refractory */
#define F_I_IN 4    /* the current's sum was inside the state range */
#define F_V_IN 8    /* the membrane's sum was inside */
#define F_R_IN 16   /* v - threshold (reset by subtraction) was inside */
#define F_TH_IN 32  /* theta's sum was inside */
#define F_S2 64     /* reset="delayed": a spike two steps before (c2 was added) */
#define F_S1 128    /* ... and the step before (c1) */
#define F_ALL_IN (F_ACTIVE | F_I_IN | F_V_IN | F_R_IN | F_TH_IN)
#define BLOCK_MAX 256 /* the most columns of a scan block (scan_block) */

/* The refractory counter's state: the count, and the spikes of the last two steps. */
#define R_COUNT 0x0fffffff
#define R_S1 (1 << 30)
#define R_S2 (1 << 29)

/* dS/dx of snnkit/surrogate.py, same formulas and order of operations: G(x) for x = h[c]
   = (v - thr) * lsb is dS/dx * lsb, the derivative with respect to v. kp = pi/2 * k rounded
   from double, as torch rounds a Python scalar. One loop per kind so that each vectorises. */
#define SG_LOOPS(RT, BODY)                                                              \
    const RT k = (RT)slope, kp = (RT)(1.5707963267948966 * slope);                      \
    (void)kp;                                                                           \
    switch (kind) {                                                                     \
        case 0: /* fast sigmoid */                                                      \
            for (int64_t c = 0; c < n; c++) {                                           \
                RT x = h[c], a = 1 + k * (x < 0 ? -x : x), g = 1 / (a * a) * lsb;       \
                BODY;                                                                   \
            }                                                                           \
            break;                                                                      \
        case 1: /* arctan */                                                            \
            for (int64_t c = 0; c < n; c++) {                                           \
                RT a = kp * h[c], g = (k / 2) / (1 + a * a) * lsb;                      \
                BODY;                                                                   \
            }                                                                           \
            break;                                                                      \
        case 2: /* triangle */                                                          \
            for (int64_t c = 0; c < n; c++) {                                           \
                RT x = h[c], a = 1 - k * (x < 0 ? -x : x), g = a > 0 ? k * a * lsb : 0; \
                BODY;                                                                   \
            }                                                                           \
            break;                                                                      \
        default: /* straight through */                                                 \
            for (int64_t c = 0; c < n; c++) {                                           \
                RT g = k * lsb;                                                         \
                BODY;                                                                   \
            }                                                                           \
    }

/* h[0..n) in place: x becomes G(x) where the flag byte says the neuron was active (not
   refractory), else 0. The flags are widened first: byte loads beside floats do not
   vectorise in gcc 12. */
#define DEF_SG(NAME, RT)                                                                \
    static void NAME(int kind, double slope, RT lsb, RT *restrict h,                    \
                     const uint8_t *restrict fl, int64_t n) {                           \
        int32_t fi[BLOCK_MAX];                                                          \
        for (int64_t c = 0; c < n; c++) fi[c] = fl[c] & F_ACTIVE;                       \
        SG_LOOPS(RT, h[c] = fi[c] ? g : 0)                                              \
    }
DEF_SG(sg_f32, float)
DEF_SG(sg_f64, double)

/* Without refractoriness and saturation (float arithmetic) every flag but the spike is 1, and
   the spike is kept in the sign of h instead of a flag byte: h = -G(x) on a spike (a zero
   derivative as -0.0), +G(x) otherwise. S: the step's spikes. */
#define DEF_SGS(NAME, RT)                                                               \
    static void NAME(int kind, double slope, RT lsb, RT *restrict h,                    \
                     const RT *restrict S, int64_t n) {                                 \
        SG_LOOPS(RT, h[c] = S[c] != 0 ? -g : g)                                         \
    }
DEF_SGS(sgs_f32, float)
DEF_SGS(sgs_f64, double)

#define T_SAT_F(x) (x)
#define T_SAT_D(x) ((x) < lo ? lo : ((x) > hi ? hi : (x)))
#define T_DECAY_F(x, d) ((x) * (d))
#define T_DECAY_D(x, d) floor(((x) * (d) + half) * inv)
#define T_EFF_F(d) (d)          /* dDECAY/dx */
#define T_EFF_D(d) ((d) * inv)

/* The forward update of one (t, b) row of a block: neurons.neuron_step item for item.
   GENERAL = 0 is the plain LIF / IF (no alpha, bias, refractory period or adaptation), whose
   general formula reduces to exactly this; SAVE = 1 also writes the surrogate's argument
   and the flags. Compile-time so that each variant vectorises. GENERAL = 1 runs every term
   whatever the flags: decay(i, 0) = 0, + 0 bias, a refractory period of 0 and theta with
   adapt_plus = 0 change nothing (up to the sign of a zero). */
#define DEF_ROW_CORE(NAME, RT, SAT, DECAY, GENERAL, SAVE, PER, BIAS)                    \
    static inline __attribute__((always_inline)) void NAME##_x(                         \
        int64_t n, const tneuron_t *p, int64_t c0, const RT *restrict x, RT *restrict V, \
        RT *restrict I, RT *restrict TH, int32_t *restrict R, RT *restrict S,           \
        RT *restrict H, uint8_t *restrict FL, const int subtract) {                     \
        const RT *restrict alpha = (const RT *)p->alpha + c0;                           \
        const RT *restrict beta = (const RT *)p->beta + c0;                             \
        const RT *restrict threshold = (const RT *)p->threshold + c0;                   \
        const RT *restrict v_reset = (const RT *)p->v_reset + c0;                       \
        const RT *restrict bias = (const RT *)p->bias + c0;                             \
        const RT *restrict adapt_plus = (const RT *)p->adapt_plus + c0;                 \
        const RT *restrict adapt_decay = (const RT *)p->adapt_decay + c0;               \
        const RT lo = (RT)p->lo, hi = (RT)p->hi, lsb = (RT)p->lsb;                      \
        const RT half = p->decay_bits ? (RT)pow2(p->decay_bits - 1) : 0;                \
        const RT inv = (RT)pow2(-p->decay_bits);                                        \
        const int has_alpha = p->has_alpha, has_bias = p->has_bias;                     \
        const int adaptive = p->adaptive;                                               \
        const int32_t refractory = p->refractory;                                       \
        const int32_t *restrict refr = PER ? p->refr + c0 : NULL;                       \
        (void)lo, (void)hi, (void)half, (void)inv, (void)lsb, (void)H, (void)FL;        \
        (void)alpha, (void)bias, (void)adapt_plus, (void)adapt_decay, (void)has_alpha;  \
        (void)has_bias, (void)adaptive, (void)refractory, (void)refr, (void)TH, (void)R; \
        int32_t fi[BLOCK_MAX]; /* the flags, narrowed to bytes after the loop */        \
        (void)fi;                                                                       \
        for (int64_t c = 0; c < n; c++) {                                               \
            const RT vold = V[c];                                                       \
            /* 3. synaptic current */                                                   \
            const RT ipre = GENERAL ? DECAY(I[c], alpha[c]) + x[c] : x[c];              \
            const RT i = SAT(ipre);                                                     \
            /* 4. membrane: one saturation of the three-term sum */                     \
            RT u = DECAY(vold, beta[c]) + i;                                            \
            if (GENERAL || BIAS) u = u + bias[c];                                       \
            const RT vs = SAT(u);                                                       \
            const int32_t r = GENERAL ? R[c] : 0;                                       \
            const int active = r == 0;                                                  \
            const RT v = active ? vs : vold;                                            \
            /* 5. spike */                                                              \
            const RT thold = GENERAL ? TH[c] : 0;                                       \
            const RT thr = GENERAL ? threshold[c] + thold : threshold[c];               \
            const int spk = (v >= thr) & active;                                        \
            /* 6. reset */                                                              \
            const RT vrp = v - thr;                                                     \
            const RT vr = subtract ? SAT(vrp) : v_reset[c];                             \
            V[c] = spk ? vr : v;                                                        \
            I[c] = i;                                                                   \
            S[c] = (RT)spk;                                                             \
            RT thn = 0, thp = 0;                                                        \
            if (GENERAL) {                                                              \
                /* 7. refractory counter, 8. homeostasis */                             \
                const int32_t rn = r > 0 ? r - 1 : 0; /* arithmetic: vectorises */      \
                R[c] = rn + spk * ((PER ? refr[c] : refractory) - rn);                  \
                thp = DECAY(thold, adapt_decay[c]) + (spk ? adapt_plus[c] : 0);         \
                thn = SAT(thp);                                                         \
                TH[c] = thn;                                                            \
            }                                                                           \
            if (SAVE) H[c] = vrp * lsb;                                                 \
            if (SAVE == 1)                                                              \
                fi[c] = spk | active << 1 | (ipre == i) << 2 | (u == vs) << 3           \
                        | (vrp == vr) << 4 | (thp == thn) << 5;                         \
        }                                                                               \
        if (SAVE == 1)                                                                  \
            for (int64_t c = 0; c < n; c++) FL[c] = (uint8_t)fi[c];                      \
    }                                                                                   \
    /* the reset's kind a constant in each copy: gcc 12 vectorises the double rows only \
       so (a loop-invariant int choosing between doubles, it does not) */             \
    static inline __attribute__((always_inline)) void NAME(                             \
        int64_t n, const tneuron_t *p, int64_t c0, const RT *restrict x, RT *restrict V, \
        RT *restrict I, RT *restrict TH, int32_t *restrict R, RT *restrict S,           \
        RT *restrict H, uint8_t *restrict FL) {                                         \
        if (p->subtract)                                                                \
            NAME##_x(n, p, c0, x, V, I, TH, R, S, H, FL, 1);                            \
        else                                                                            \
            NAME##_x(n, p, c0, x, V, I, TH, R, S, H, FL, 0);                            \
    }

/* The row (PER = 1: its copy with refractory periods per neuron, refr[c]; the plain LIF / IF
   row plus the bias, BIAS = 1, where a bias is all that makes a population general: the
   general row's other terms would change nothing, and cost floors in fixed point), and for
   the delayed reset around it: 2. its inputs join the synaptic input after the last steps'
   spikes, taken from the top bits of R (the row sees the plain counter), then put back with
   this step's, and given to the flags. Separate loops: the row vectorises as without. */
#define DEF_ROW(NAME, RT, SAT, DECAY, GENERAL, SAVE)                                    \
    DEF_ROW_CORE(NAME##_core, RT, SAT, DECAY, GENERAL, SAVE, 0, 0)                      \
    DEF_ROW_CORE(NAME##_per, RT, SAT, DECAY, GENERAL, SAVE, 1, 0)                       \
    DEF_ROW_CORE(NAME##_bias, RT, SAT, DECAY, 0, SAVE, 0, 1)                            \
    static inline __attribute__((always_inline)) void NAME(                             \
        int64_t n, const tneuron_t *p, int64_t c0, const RT *restrict x, RT *restrict V, \
        RT *restrict I, RT *restrict TH, int32_t *restrict R, RT *restrict S,           \
        RT *restrict H, uint8_t *restrict FL) {                                         \
        const RT *xin = x; /* the synaptic input, plus the delayed reset's */          \
        RT xd[GENERAL ? BLOCK_MAX : 1];                                                 \
        int32_t last[GENERAL ? BLOCK_MAX : 1];                                          \
        if (GENERAL && p->delayed) {                                                    \
            const RT *restrict c1 = (const RT *)p->c1 + c0;                             \
            const RT *restrict c2 = (const RT *)p->c2 + c0;                             \
            for (int64_t c = 0; c < n; c++) {                                           \
                last[c] = R[c] & (R_S1 | R_S2);                                         \
                R[c] &= R_COUNT;                                                        \
                xd[c] = (x[c] + (last[c] & R_S1 ? c1[c] : 0)) + (last[c] & R_S2 ? c2[c] : 0); \
            }                                                                           \
            xin = xd;                                                                   \
        }                                                                               \
        if (GENERAL && p->refr)                                                         \
            NAME##_per(n, p, c0, xin, V, I, TH, R, S, H, FL);                           \
        else if (GENERAL && !p->has_alpha && !p->refractory && !p->adaptive)            \
            NAME##_bias(n, p, c0, xin, V, I, TH, R, S, H, FL);                          \
        else                                                                            \
            NAME##_core(n, p, c0, xin, V, I, TH, R, S, H, FL);                          \
        if (GENERAL && p->delayed) {                                                    \
            for (int64_t c = 0; c < n; c++)                                             \
                R[c] |= (S[c] != 0) << 30 | (last[c] >> 1 & R_S2);                      \
            if (SAVE == 1)                                                              \
                for (int64_t c = 0; c < n; c++) FL[c] |= (uint8_t)(last[c] >> 23);      \
        }                                                                               \
    }

DEF_ROW(row_f32_lif, float, T_SAT_F, T_DECAY_F, 0, 0)
DEF_ROW(row_f32_lif_s, float, T_SAT_F, T_DECAY_F, 0, 1)
DEF_ROW(row_f32_gen, float, T_SAT_F, T_DECAY_F, 1, 0)
DEF_ROW(row_f32_gen_s, float, T_SAT_F, T_DECAY_F, 1, 1)
DEF_ROW(row_f64_lif, double, T_SAT_D, T_DECAY_D, 0, 0)
DEF_ROW(row_f64_lif_s, double, T_SAT_D, T_DECAY_D, 0, 1)
DEF_ROW(row_f64_gen, double, T_SAT_D, T_DECAY_D, 1, 0)
DEF_ROW(row_f64_gen_s, double, T_SAT_D, T_DECAY_D, 1, 1)
DEF_ROW(row_f32_lif_h, float, T_SAT_F, T_DECAY_F, 0, 2)
DEF_ROW(row_f32_gen_h, float, T_SAT_F, T_DECAY_F, 1, 2)
DEF_ROW(row_f64_lif_h, double, T_SAT_D, T_DECAY_D, 0, 2)
DEF_ROW(row_f64_gen_h, double, T_SAT_D, T_DECAY_D, 1, 2)

typedef struct {
    int64_t T, B, N, blk;
    tneuron_t p;
    const void *gs;                    /* [T, B, ldg] gradients of the spikes */
    int64_t ldg;
    const void *gv, *gi, *gth;         /* [T, B, N] of the recorded states, or NULL */
    const void *h;
    const uint8_t *flags;
    const void *vprev, *iprev;         /* NULL unless beta / alpha need a gradient */
    void *cv, *ci, *cth;               /* [B, N] gradients carried to the step before */
    void *gx;                          /* [T, B, ldx] out: gradient of the synaptic input */
    int64_t ldx;
    double *g_alpha, *g_beta, *g_thr, *g_bias; /* [N] accumulated, or NULL */
    double *g_c1, *g_c2;               /* [N] reset="delayed", accumulated, or NULL */
} tbwd_t;

/* The backward of one (t, b) row: the gradients of the state after the step (CV, CI, CT,
   carried from step t + 1 plus the recorded states') become those before it, and gx. gx may
   be gs (in place): each gx[c] is written after gs[c] is read, and no other column reads it.
   ACC: which of the threshold's (1) and bias's (2) gradients are summed (in doubles, gt and
   gbi): those not wanted cost nothing in the loop. */
#define DEF_BROW(NAME, RT, EFF, GENERAL, SIGNED, ACC)                                        \
    static inline __attribute__((always_inline)) void NAME(                             \
        int64_t n, const tneuron_t *p, int64_t c0, const RT *restrict gs,               \
        const RT *restrict h, const uint8_t *restrict fl, RT *restrict CV,              \
        RT *restrict CI, RT *restrict CT, RT *restrict gx, double *restrict gt,         \
        double *restrict gbi, RT *restrict GU) {                                        \
        const RT *restrict alpha = (const RT *)p->alpha + c0;                           \
        const RT *restrict beta = (const RT *)p->beta + c0;                             \
        const RT *restrict adapt_decay = (const RT *)p->adapt_decay + c0;               \
        const RT inv = (RT)pow2(-p->decay_bits);                                        \
        const int has_alpha = p->has_alpha, subtract = p->subtract;                     \
        const int adaptive = p->adaptive;                                               \
        (void)inv, (void)alpha, (void)adapt_decay, (void)has_alpha, (void)adaptive;     \
        (void)CI, (void)CT, (void)GU;                                                   \
        int32_t fi[BLOCK_MAX]; /* flags widened first: byte loads beside floats do not */ \
        if (!SIGNED)           /* vectorise in gcc 12 */                                  \
            for (int64_t c = 0; c < n; c++) fi[c] = fl[c];                                \
        for (int64_t c = 0; c < n; c++) {                                               \
            const int f = SIGNED ? (signbit(h[c]) ? F_SPIKE | F_ALL_IN : F_ALL_IN) : fi[c]; \
            const RT gvp = CV[c];                                                       \
            /* 6. reset: a spike selects sat(v - thr) or v_reset (spike detached) */    \
            const RT gr = f & F_SPIKE ? (subtract && (f & F_R_IN) ? gvp : 0) : 0;       \
            RT gv = f & F_SPIKE ? gr : gvp;                                             \
            /* 5. spike = S(v - thr): the surrogate's derivative */                     \
            const RT gsp = gs[c] * (SIGNED ? fabs(h[c]) : h[c]);                        \
            gv += gsp;                                                                  \
            const RT gthr = -gr - gsp;                                                  \
            if (ACC & 1) gt[c] += gthr;                                                 \
            /* 4. v = active ? sat(decay(v, beta) + i + bias) : v */                    \
            const int active = GENERAL ? f & F_ACTIVE : 1;                              \
            const RT gu = active && (f & F_V_IN) ? gv : 0;                              \
            RT gvprev = gu * EFF(beta[c]);                                              \
            if (GENERAL) gvprev += active ? 0 : gv;                                     \
            if (ACC & 2) gbi[c] += gu;                                                  \
            /* 3. i = sat(decay(i, alpha) + x) */                                       \
            const RT gi = GENERAL ? CI[c] + gu : gu;                                    \
            const RT gpre = f & F_I_IN ? gi : 0;                                        \
            gx[c] = gpre;                                                               \
            CV[c] = gvprev;                                                             \
            if (GENERAL) { /* alpha = 0: nothing carried; not adaptive: CT unused */    \
                CI[c] = gpre * EFF(alpha[c]);                                           \
                /* 8. theta = sat(decay(theta, ad) + spike * ap); thr = threshold + theta */ \
                CT[c] = (f & F_TH_IN ? CT[c] * EFF(adapt_decay[c]) : 0) + gthr;         \
                GU[c] = gu;                                                             \
            }                                                                           \
        }                                                                               \
    }

DEF_BROW(brow_f32_lif, float, T_EFF_F, 0, 0, 3)
DEF_BROW(brow_f32_gen, float, T_EFF_F, 1, 0, 3)
DEF_BROW(brow_f64_lif, double, T_EFF_D, 0, 0, 3)
DEF_BROW(brow_f64_gen, double, T_EFF_D, 1, 0, 3)
DEF_BROW(brow_f32_lif_sg, float, T_EFF_F, 0, 1, 3)
DEF_BROW(brow_f32_gen_sg, float, T_EFF_F, 1, 1, 3)
DEF_BROW(brow_f64_lif_sg, double, T_EFF_D, 0, 1, 3)
DEF_BROW(brow_f64_gen_sg, double, T_EFF_D, 1, 1, 3)
DEF_BROW(brow_f32_lif_na, float, T_EFF_F, 0, 0, 0) /* neither */
DEF_BROW(brow_f64_lif_na, double, T_EFF_D, 0, 0, 0)
DEF_BROW(brow_f32_lif_sg_na, float, T_EFF_F, 0, 1, 0)
DEF_BROW(brow_f64_lif_sg_na, double, T_EFF_D, 0, 1, 0)
DEF_BROW(brow_f32_lif_b, float, T_EFF_F, 0, 0, 2) /* the bias's only */
DEF_BROW(brow_f64_lif_b, double, T_EFF_D, 0, 0, 2)
DEF_BROW(brow_f32_lif_sg_b, float, T_EFF_F, 0, 1, 2)
DEF_BROW(brow_f64_lif_sg_b, double, T_EFF_D, 0, 1, 2)

/* One work item = a range of columns (as wide as the threads allow: one thread reads whole
   rows, in memory order for the prefetchers), every step backwards and sample, in
   sub-blocks of at most BLOCK_MAX columns per row. */
#define DEF_BWD(NAME, RT, EFF, BROW)                                                    \
    static void NAME(void *ctx, int64_t item, void *scratch) {                          \
        const tbwd_t *G = (const tbwd_t *)ctx;                                          \
        const tneuron_t *p = &G->p;                                                     \
        const int64_t N = G->N, c0 = item * G->blk;                                     \
        const int64_t n = N - c0 < G->blk ? N - c0 : G->blk;                            \
        /* a bias alone: the plain row (it adds the bias's gradient too) */             \
        const int general = p->has_alpha || p->refractory || p->adaptive || G->vprev    \
                            || G->iprev;                                                \
        const int sums = (G->g_thr ? 1 : 0) | (G->g_bias ? 2 : 0); /* the rows' sums */   \
        double *acc = (double *)scratch; /* 6 x blk: alpha, beta, threshold, bias, c1, c2 */ \
        memset(acc, 0, sizeof(double) * 6 * (size_t)G->blk);                            \
        RT *GU = (RT *)(acc + 6 * G->blk); /* BLOCK_MAX: the membrane sum's gradient */ \
        const RT inv = (RT)pow2(-p->decay_bits);                                        \
        (void)inv;                                                                      \
        for (int64_t t = G->T - 1; t >= 0; t--) { /* then b: the rows read are adjacent */ \
            for (int64_t b = 0; b < G->B; b++) {                                        \
                for (int64_t s0 = 0; s0 < n; s0 += BLOCK_MAX) {                         \
                    const int64_t c1 = c0 + s0;                                         \
                    const int64_t m = n - s0 < BLOCK_MAX ? n - s0 : BLOCK_MAX;          \
                    double *ga = acc + s0, *gb = ga + G->blk, *gt = gb + G->blk;        \
                    double *gbi = gt + G->blk, *gc1 = gbi + G->blk, *gc2 = gc1 + G->blk; \
                    RT *CV = (RT *)G->cv + b * N + c1, *CI = (RT *)G->ci + b * N + c1;  \
                    RT *CT = (RT *)G->cth + b * N + c1;                                 \
                    const int64_t o = (t * G->B + b) * N + c1;                          \
                    /* gradients of the state after the step: carried + recorded */     \
                    if (G->gv)                                                          \
                        for (int64_t c = 0; c < m; c++) CV[c] += ((const RT *)G->gv)[o + c]; \
                    if (G->gi)                                                          \
                        for (int64_t c = 0; c < m; c++) CI[c] += ((const RT *)G->gi)[o + c]; \
                    if (G->gth)                                                         \
                        for (int64_t c = 0; c < m; c++) CT[c] += ((const RT *)G->gth)[o + c]; \
                    RT *gx = (RT *)G->gx + (t * G->B + b) * G->ldx + c1;                \
                    const RT *gs = (const RT *)G->gs + (t * G->B + b) * G->ldg + c1;    \
                    const RT *h = (const RT *)G->h + o;                                 \
                    const uint8_t *fl = G->flags ? G->flags + o : NULL;                 \
                    if (fl && general)                                                  \
                        BROW##_gen(m, p, c1, gs, h, fl, CV, CI, CT, gx, gt, gbi, GU);   \
                    else if (fl && sums == 2)                                           \
                        BROW##_lif_b(m, p, c1, gs, h, fl, CV, CI, CT, gx, gt, gbi, GU); \
                    else if (fl && sums)                                                \
                        BROW##_lif(m, p, c1, gs, h, fl, CV, CI, CT, gx, gt, gbi, GU);   \
                    else if (fl)                                                        \
                        BROW##_lif_na(m, p, c1, gs, h, fl, CV, CI, CT, gx, gt, gbi, GU); \
                    else if (general) /* the spike in the sign of h */                  \
                        BROW##_gen_sg(m, p, c1, gs, h, NULL, CV, CI, CT, gx, gt, gbi, GU); \
                    else if (sums == 2)                                                 \
                        BROW##_lif_sg_b(m, p, c1, gs, h, NULL, CV, CI, CT, gx, gt, gbi, GU); \
                    else if (sums)                                                      \
                        BROW##_lif_sg(m, p, c1, gs, h, NULL, CV, CI, CT, gx, gt, gbi, GU); \
                    else                                                                \
                        BROW##_lif_sg_na(m, p, c1, gs, h, NULL, CV, CI, CT, gx, gt, gbi, GU); \
                    /* d(decay(v, beta))/dbeta = v (fixed: v / 2^D), the same for alpha */ \
                    if (G->vprev)                                                       \
                        for (int64_t c = 0; c < m; c++)                                 \
                            gb[c] += GU[c] * EFF(((const RT *)G->vprev)[o + c]);        \
                    if (G->iprev)                                                       \
                        for (int64_t c = 0; c < m; c++)                                 \
                            ga[c] += gx[c] * EFF(((const RT *)G->iprev)[o + c]);        \
                    /* reset="delayed": x + c1 after a spike (+ c2 two steps after) */  \
                    if (G->g_c1)                                                        \
                        for (int64_t c = 0; c < m; c++)                                 \
                            gc1[c] += fl[c] & F_S1 ? (double)gx[c] : 0;                 \
                    if (G->g_c2)                                                        \
                        for (int64_t c = 0; c < m; c++)                                 \
                            gc2[c] += fl[c] & F_S2 ? (double)gx[c] : 0;                 \
                }                                                                       \
            }                                                                           \
        }                                                                               \
        for (int64_t c = 0; c < n; c++) {                                               \
            const double *a = acc + c;                                                  \
            if (G->g_alpha) G->g_alpha[c0 + c] += a[0];                                 \
            if (G->g_beta) G->g_beta[c0 + c] += a[G->blk];                              \
            if (G->g_thr) G->g_thr[c0 + c] += a[2 * G->blk];                            \
            if (G->g_bias) G->g_bias[c0 + c] += a[3 * G->blk];                          \
            if (G->g_c1) G->g_c1[c0 + c] += a[4 * G->blk];                              \
            if (G->g_c2) G->g_c2[c0 + c] += a[5 * G->blk];                              \
        }                                                                               \
    }

DEF_BWD(bwd_f32, float, T_EFF_F, brow_f32)
DEF_BWD(bwd_f64, double, T_EFF_D, brow_f64)

/* Columns per work item: small enough that every thread gets items, a multiple of 16. */
static int64_t scan_block(int64_t N, int n_threads) {
    int64_t blk = BLOCK_MAX;
    while (blk > 16 && (N + blk - 1) / blk < 4 * (int64_t)n_threads) blk /= 2;
    return blk;
}

/* The time-reversed recurrence: gx [T, B, ldx >= N] from the spikes' gradients gs [T, B,
   ldg >= N] (gx may be gs, in place, when ldg = ldx) and those of the recorded states gv,
   gi, gth ([T, B, N], each may be NULL), the forward's h and flags (vprev /
   iprev when g_beta / g_alpha are wanted; the flags when g_c1 / g_c2 are). cv, ci, cth: [B, N]
   gradients of the state after the last step, in; of the state before the first step, out.
   g_*: [N] doubles, added to. */
int snn_train_backward(int dbl, int64_t T, int64_t B, int64_t N, const tneuron_t *p,
                       const void *gs, int64_t ldg, const void *gv, const void *gi,
                       const void *gth,
                       const void *h, const uint8_t *flags, const void *vprev,
                       const void *iprev, void *cv, void *ci, void *cth, void *gx, int64_t ldx,
                       double *g_alpha, double *g_beta, double *g_thr, double *g_bias,
                       double *g_c1, double *g_c2, int n_threads) {
    /* one range of columns per thread (two where there are several, for the balance) */
    const int64_t items = n_threads > 1 ? 2 * (int64_t)n_threads : 1;
    int64_t blk = (N + items - 1) / items;
    blk = (blk + 15) / 16 * 16;
    tbwd_t G = {T, B, N, blk, *p, gs, ldg, gv, gi, gth, h, flags, vprev, iprev, cv, ci, cth,
                gx, ldx, g_alpha, g_beta, g_thr, g_bias, g_c1, g_c2};
    return parallel_for(dbl ? bwd_f64 : bwd_f32, &G, (N + blk - 1) / blk, n_threads,
                        sizeof(double) * (6 * (size_t)blk + BLOCK_MAX));
}
