/* CPU fast path of surrogate-gradient training (snnkit/training/kernel.py builds and loads it).

   A feed-forward population is trained as three fused passes instead of T steps of small torch
   operations:

   1. event sums: the synaptic input of every step and sample at once, summing the weight rows
      of the sources that spike (the simulator's accumulation code, included below, so the
      float sums are added in the simulator's order and give its spikes);
   2. the neuron update over all T steps (forward: spikes, and per step the surrogate
      derivative and a byte of branch flags; backward: the time-reversed recurrence of the
      gradients), each neuron on its own, in parallel over blocks of neurons;
   3. weight gradients: for every source spike, the step's input gradients of the targets are
      added to that source's row (one event-driven pass instead of a dense matrix product).

   The neuron update is snnkit/neurons.py's neuron_step, item for item (docs/fixed-point.md
   "One time step" 3-8), in two arithmetics: float32 ("float"), and the hardware's integers
   held in doubles ("fixed": saturation, decay (x*d + 2^(D-1)) >> D as floor(... * 2^-D),
   exact below 2^53). Gradients follow snnkit/training/arith.py: the spike's derivative is the
   surrogate of x = (v - threshold) * lsb (times lsb: the derivative with respect to v), the
   reset does not pass gradient through the spike (detached reset), saturation passes it only
   inside the range, floor passes it straight through. Build with -ffp-contract=off: the float
   update must round each product and sum as torch does. */

#include "../_kernels.c" /* the thread pool, spike lists and event sums of the simulator */

#include <math.h> /* floor */

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
} tneuron_t;

/* Flag bits per (t, b, n), for the backward pass. */
#define F_SPIKE 1
#define F_ACTIVE 2  /* not refractory */
#define F_I_IN 4    /* the current's sum was inside the state range */
#define F_V_IN 8    /* the membrane's sum was inside */
#define F_R_IN 16   /* v - threshold (reset by subtraction) was inside */
#define F_TH_IN 32  /* theta's sum was inside */
#define F_ALL_IN (F_ACTIVE | F_I_IN | F_V_IN | F_R_IN | F_TH_IN)
#define BLOCK_MAX 256 /* the most columns of a scan block (scan_block) */

/* dS/dx of snnkit/surrogate.py, same formulas and order of operations, over h[0..n) in
   place: h holds x = (v - thr) * lsb, becomes dS/dx * lsb where the flag byte says the neuron
   was active (not refractory), else 0. kp = pi/2 * k rounded from double, as torch rounds a
   Python scalar. One loop per kind so that each vectorises. */
#define DEF_SG(NAME, RT)                                                                \
    static void NAME(int kind, double slope, RT lsb, RT *restrict h,                    \
                     const uint8_t *restrict fl, int64_t n) {                           \
        const RT k = (RT)slope, kp = (RT)(1.5707963267948966 * slope);                  \
        switch (kind) {                                                                 \
            case 0:                                                                     \
                for (int64_t c = 0; c < n; c++) {                                       \
                    RT x = h[c], a = 1 + k * (x < 0 ? -x : x);                          \
                    h[c] = fl[c] & F_ACTIVE ? 1 / (a * a) * lsb : 0;                    \
                }                                                                       \
                break;                                                                  \
            case 1:                                                                     \
                for (int64_t c = 0; c < n; c++) {                                       \
                    RT a = kp * h[c];                                                   \
                    h[c] = fl[c] & F_ACTIVE ? (k / 2) / (1 + a * a) * lsb : 0;          \
                }                                                                       \
                break;                                                                  \
            case 2:                                                                     \
                for (int64_t c = 0; c < n; c++) {                                       \
                    RT x = h[c], a = 1 - k * (x < 0 ? -x : x);                          \
                    h[c] = fl[c] & F_ACTIVE && a > 0 ? k * a * lsb : 0;                 \
                }                                                                       \
                break;                                                                  \
            default:                                                                    \
                for (int64_t c = 0; c < n; c++) h[c] = fl[c] & F_ACTIVE ? k * lsb : 0;  \
        }                                                                               \
    }
DEF_SG(sg_f32, float)
DEF_SG(sg_f64, double)

/* Without refractoriness and saturation (float arithmetic) every flag but the spike is 1, and
   the spike is kept in the sign of h instead of a flag byte: h = -dS/dx * lsb on a spike (a
   zero derivative as -0.0). S: the step's spikes. */
#define DEF_SGS(NAME, RT, SG)                                                            \
    static void NAME(int kind, double slope, RT lsb, RT *restrict h,                   \
                     const RT *restrict S, int64_t n) {                                 \
        uint8_t fl[BLOCK_MAX];                                                          \
        memset(fl, F_ACTIVE, (size_t)n);                                                \
        SG(kind, slope, lsb, h, fl, n);                                                 \
        for (int64_t c = 0; c < n; c++) h[c] = S[c] != 0 ? -h[c] : h[c];                \
    }
DEF_SGS(sgs_f32, float, sg_f32)
DEF_SGS(sgs_f64, double, sg_f64)

#define T_SAT_F(x) (x)
#define T_SAT_D(x) ((x) < lo ? lo : ((x) > hi ? hi : (x)))
#define T_DECAY_F(x, d) ((x) * (d))
#define T_DECAY_D(x, d) floor(((x) * (d) + half) * inv)
#define T_EFF_F(d) (d)          /* dDECAY/dx */
#define T_EFF_D(d) ((d) * inv)

typedef struct {
    int64_t T, B, N, blk;
    const void *x;                 /* [T, B, N] synaptic input */
    tneuron_t p;
    void *v, *i, *th;              /* [B, N] state, in and out */
    int32_t *r;                    /* [B, N] refractory counters, in and out */
    void *spikes;                  /* [T, B, N] 0/1 */
    void *h;                       /* [T, B, N] dS/dv (0 when refractory) or NULL */
    uint8_t *flags;                /* [T, B, N]; NULL when h is */
    void *vprev, *iprev;           /* [T, B, N] v and i before the step, or NULL */
    void *rec_v, *rec_i, *rec_th;  /* [T, B, N] states after the step, or NULL */
} tfwd_t;

/* The forward update of one (t, b) row of a block: neurons.neuron_step item for item.
   GENERAL = 0 is the plain LIF / IF (no alpha, bias, refractory period or adaptation), whose
   general formula reduces to exactly this; SAVE = 1 also writes the surrogate's argument
   and the flags. Compile-time so that each variant vectorises. GENERAL = 1 runs every term
   whatever the flags: decay(i, 0) = 0, + 0 bias, a refractory period of 0 and theta with
   adapt_plus = 0 change nothing (up to the sign of a zero). */
#define DEF_ROW(NAME, RT, SAT, DECAY, GENERAL, SAVE)                                    \
    static inline __attribute__((always_inline)) void NAME(                             \
        int64_t n, const tneuron_t *p, int64_t c0, const RT *restrict x, RT *restrict V, \
        RT *restrict I, RT *restrict TH, int32_t *restrict R, RT *restrict S,           \
        RT *restrict H, uint8_t *restrict FL) {                                         \
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
        const int subtract = p->subtract, adaptive = p->adaptive;                       \
        const int32_t refractory = p->refractory;                                       \
        (void)lo, (void)hi, (void)half, (void)inv, (void)lsb, (void)H, (void)FL;        \
        (void)alpha, (void)bias, (void)adapt_plus, (void)adapt_decay, (void)has_alpha;  \
        (void)has_bias, (void)adaptive, (void)refractory, (void)TH, (void)R;            \
        int32_t fi[BLOCK_MAX]; /* the flags, narrowed to bytes after the loop */        \
        (void)fi;                                                                       \
        for (int64_t c = 0; c < n; c++) {                                               \
            const RT vold = V[c];                                                       \
            /* 3. synaptic current */                                                   \
            const RT ipre = GENERAL ? DECAY(I[c], alpha[c]) + x[c] : x[c];              \
            const RT i = SAT(ipre);                                                     \
            /* 4. membrane: one saturation of the three-term sum */                     \
            RT u = DECAY(vold, beta[c]) + i;                                            \
            if (GENERAL) u = u + bias[c];                                               \
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
                R[c] = rn + spk * (refractory - rn);                                    \
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

#define DEF_FWD(NAME, RT, ROW, SG, SGS)                                                 \
    static void NAME(void *ctx, int64_t item, void *scratch) {                          \
        (void)scratch;                                                                  \
        const tfwd_t *F = (const tfwd_t *)ctx;                                          \
        const tneuron_t *p = &F->p;                                                     \
        const int64_t N = F->N, c0 = item * F->blk;                                     \
        const int64_t n = N - c0 < F->blk ? N - c0 : F->blk;                            \
        const int general = p->has_alpha || p->has_bias || p->refractory || p->adaptive; \
        for (int64_t b = 0; b < F->B; b++) {                                            \
            RT *V = (RT *)F->v + b * N + c0, *I = (RT *)F->i + b * N + c0;              \
            RT *TH = (RT *)F->th + b * N + c0;                                          \
            int32_t *R = F->r + b * N + c0;                                             \
            for (int64_t t = 0; t < F->T; t++) {                                        \
                const int64_t o = (t * F->B + b) * N + c0;                              \
                const RT *x = (const RT *)F->x + o;                                     \
                RT *S = (RT *)F->spikes + o, *H = F->h ? (RT *)F->h + o : NULL;         \
                uint8_t *FL = F->flags ? F->flags + o : NULL;                           \
                if (F->vprev) memcpy((RT *)F->vprev + o, V, sizeof(RT) * n);            \
                if (F->iprev) memcpy((RT *)F->iprev + o, I, sizeof(RT) * n);            \
                if (H && FL) {                                                          \
                    if (general) ROW##_gen_s(n, p, c0, x, V, I, TH, R, S, H, FL);       \
                    else ROW##_lif_s(n, p, c0, x, V, I, TH, R, S, H, FL);               \
                    SG(p->surrogate, p->slope, (RT)p->lsb, H, FL, n);                   \
                } else if (H) { /* the spike in the sign of h */                        \
                    if (general) ROW##_gen_h(n, p, c0, x, V, I, TH, R, S, H, FL);       \
                    else ROW##_lif_h(n, p, c0, x, V, I, TH, R, S, H, FL);               \
                    SGS(p->surrogate, p->slope, (RT)p->lsb, H, S, n);                   \
                } else {                                                                \
                    if (general) ROW##_gen(n, p, c0, x, V, I, TH, R, S, H, FL);         \
                    else ROW##_lif(n, p, c0, x, V, I, TH, R, S, H, FL);                 \
                }                                                                       \
                if (F->rec_v) memcpy((RT *)F->rec_v + o, V, sizeof(RT) * n);            \
                if (F->rec_i) memcpy((RT *)F->rec_i + o, I, sizeof(RT) * n);            \
                if (F->rec_th) memcpy((RT *)F->rec_th + o, TH, sizeof(RT) * n);         \
            }                                                                           \
        }                                                                               \
    }

DEF_FWD(fwd_f32, float, row_f32, sg_f32, sgs_f32)
DEF_FWD(fwd_f64, double, row_f64, sg_f64, sgs_f64)

typedef struct {
    int64_t T, B, N, blk;
    tneuron_t p;
    const void *gs, *gv, *gi, *gth;    /* [T, B, N] output gradients (gv.. may be NULL) */
    const void *h;
    const uint8_t *flags;
    const void *vprev, *iprev;         /* NULL unless beta / alpha need a gradient */
    void *cv, *ci, *cth;               /* [B, N] gradients carried to the step before */
    void *gx;                          /* [T, B, ldx] out: gradient of the synaptic input */
    int64_t ldx;
    double *g_alpha, *g_beta, *g_thr, *g_bias; /* [N] accumulated, or NULL */
} tbwd_t;

/* The backward of one (t, b) row: the gradients of the state after the step (CV, CI, CT,
   carried from step t + 1 plus the recorded states') become those before it, and gx. */
#define DEF_BROW(NAME, RT, EFF, GENERAL, SIGNED)                                        \
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
            gt[c] += gthr;                                                              \
            /* 4. v = active ? sat(decay(v, beta) + i + bias) : v */                    \
            const int active = GENERAL ? f & F_ACTIVE : 1;                              \
            const RT gu = active && (f & F_V_IN) ? gv : 0;                              \
            RT gvprev = gu * EFF(beta[c]);                                              \
            if (GENERAL) gvprev += active ? 0 : gv;                                     \
            gbi[c] += gu;                                                               \
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

DEF_BROW(brow_f32_lif, float, T_EFF_F, 0, 0)
DEF_BROW(brow_f32_gen, float, T_EFF_F, 1, 0)
DEF_BROW(brow_f64_lif, double, T_EFF_D, 0, 0)
DEF_BROW(brow_f64_gen, double, T_EFF_D, 1, 0)
DEF_BROW(brow_f32_lif_sg, float, T_EFF_F, 0, 1)
DEF_BROW(brow_f32_gen_sg, float, T_EFF_F, 1, 1)
DEF_BROW(brow_f64_lif_sg, double, T_EFF_D, 0, 1)
DEF_BROW(brow_f64_gen_sg, double, T_EFF_D, 1, 1)

#define DEF_BWD(NAME, RT, EFF, BROW)                                                    \
    static void NAME(void *ctx, int64_t item, void *scratch) {                          \
        const tbwd_t *G = (const tbwd_t *)ctx;                                          \
        const tneuron_t *p = &G->p;                                                     \
        const int64_t N = G->N, c0 = item * G->blk;                                     \
        const int64_t n = N - c0 < G->blk ? N - c0 : G->blk;                            \
        const int general = p->has_alpha || p->has_bias || p->refractory || p->adaptive \
                            || G->vprev || G->iprev;                                    \
        double *acc = (double *)scratch; /* 4 x blk: alpha, beta, threshold, bias */    \
        memset(acc, 0, sizeof(double) * 4 * (size_t)G->blk);                            \
        RT *GU = (RT *)(acc + 4 * G->blk); /* blk: the membrane sum's gradient */       \
        const RT inv = (RT)pow2(-p->decay_bits);                                        \
        (void)inv;                                                                      \
        double *ga = acc, *gb = acc + G->blk, *gt = acc + 2 * G->blk, *gbi = acc + 3 * G->blk; \
        for (int64_t b = 0; b < G->B; b++) {                                            \
            RT *CV = (RT *)G->cv + b * N + c0, *CI = (RT *)G->ci + b * N + c0;          \
            RT *CT = (RT *)G->cth + b * N + c0;                                         \
            for (int64_t t = G->T - 1; t >= 0; t--) {                                   \
                const int64_t o = (t * G->B + b) * N + c0;                              \
                /* gradients of the state after the step: carried + recorded */         \
                if (G->gv) for (int64_t c = 0; c < n; c++) CV[c] += ((const RT *)G->gv)[o + c]; \
                if (G->gi) for (int64_t c = 0; c < n; c++) CI[c] += ((const RT *)G->gi)[o + c]; \
                if (G->gth) for (int64_t c = 0; c < n; c++) CT[c] += ((const RT *)G->gth)[o + c]; \
                RT *gx = (RT *)G->gx + (t * G->B + b) * G->ldx + c0;                    \
                const RT *gs = (const RT *)G->gs + o, *h = (const RT *)G->h + o;        \
                if (G->flags && general)                                                \
                    BROW##_gen(n, p, c0, gs, h, G->flags + o, CV, CI, CT, gx, gt, gbi, GU); \
                else if (G->flags)                                                      \
                    BROW##_lif(n, p, c0, gs, h, G->flags + o, CV, CI, CT, gx, gt, gbi, GU); \
                else if (general) /* the spike in the sign of h */                      \
                    BROW##_gen_sg(n, p, c0, gs, h, NULL, CV, CI, CT, gx, gt, gbi, GU);  \
                else                                                                    \
                    BROW##_lif_sg(n, p, c0, gs, h, NULL, CV, CI, CT, gx, gt, gbi, GU);  \
                /* d(decay(v, beta))/dbeta = v (fixed: v / 2^D), the same for alpha */  \
                if (G->vprev)                                                           \
                    for (int64_t c = 0; c < n; c++)                                     \
                        gb[c] += GU[c] * EFF(((const RT *)G->vprev)[o + c]);            \
                if (G->iprev)                                                           \
                    for (int64_t c = 0; c < n; c++)                                     \
                        ga[c] += gx[c] * EFF(((const RT *)G->iprev)[o + c]);            \
            }                                                                           \
        }                                                                               \
        for (int64_t c = 0; c < n; c++) {                                               \
            if (G->g_alpha) G->g_alpha[c0 + c] += ga[c];                                \
            if (G->g_beta) G->g_beta[c0 + c] += gb[c];                                  \
            if (G->g_thr) G->g_thr[c0 + c] += gt[c];                                    \
            if (G->g_bias) G->g_bias[c0 + c] += gbi[c];                                 \
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

/* The neuron update over T steps. dbl: 0 float32 arithmetic, 1 fixed point in doubles.
   x, spikes, h, vprev, iprev, rec_*: [T, B, N]; v, i, th, r: [B, N] state, updated in place.
   h, flags, vprev, iprev, rec_* may be NULL. Returns 0, or -1 when memory ran out. */
int snn_train_forward(int dbl, int64_t T, int64_t B, int64_t N, const void *x,
                      const tneuron_t *p, void *v, void *i, void *th, int32_t *r, void *spikes,
                      void *h, uint8_t *flags, void *vprev, void *iprev, void *rec_v,
                      void *rec_i, void *rec_th, int n_threads) {
    int64_t blk = scan_block(N, n_threads);
    tfwd_t F = {T, B, N, blk, x, *p, v, i, th, r, spikes, h, flags, vprev, iprev,
                rec_v, rec_i, rec_th};
    return parallel_for(dbl ? fwd_f64 : fwd_f32, &F, (N + blk - 1) / blk, n_threads, 0);
}

/* The time-reversed recurrence: gx [T, B, ldx >= N] from the spikes' gradients gs (and those of
   the recorded states gv, gi, gth, each may be NULL), the forward's h and flags (vprev /
   iprev when g_beta / g_alpha are wanted). cv, ci, cth: [B, N] gradients of the state after
   the last step, in; of the state before the first step, out. g_*: [N] doubles, added to. */
int snn_train_backward(int dbl, int64_t T, int64_t B, int64_t N, const tneuron_t *p,
                       const void *gs, const void *gv, const void *gi, const void *gth,
                       const void *h, const uint8_t *flags, const void *vprev,
                       const void *iprev, void *cv, void *ci, void *cth, void *gx, int64_t ldx,
                       double *g_alpha, double *g_beta, double *g_thr, double *g_bias,
                       int n_threads) {
    int64_t blk = scan_block(N, n_threads);
    tbwd_t G = {T, B, N, blk, *p, gs, gv, gi, gth, h, flags, vprev, iprev, cv, ci, cth, gx, ldx,
                g_alpha, g_beta, g_thr, g_bias};
    return parallel_for(dbl ? bwd_f64 : bwd_f32, &G, (N + blk - 1) / blk, n_threads,
                        sizeof(double) * 5 * (size_t)blk);
}

/* ------------------------------------------------------------------ event lists and sums */

/* Spike lists of float rows (the spikes of a trained population, 0.0 / 1.0): as the
   simulator's byte lists, without a conversion pass. kind 1: float32, 2: float64. */
typedef struct {
    int kind;
    const void *x;
    int64_t n_samples, S, stride;
    int64_t *offsets;
    int32_t *idx;
} flists_t;

/* Write j * stride for every nonzero x[j]; returns the count (branch-free where AVX-512
   can compress, as list_spikes). */
static int64_t list_f32(const float *x, int64_t n, int64_t stride, int32_t *out) {
    int64_t c = 0, j = 0;
#if defined(__AVX512F__)
    const __m512i step = _mm512_set1_epi32((int32_t)(16 * stride));
    __m512i offs = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int32_t)stride));
    for (; j + 16 <= n; j += 16, offs = _mm512_add_epi32(offs, step)) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + j), _mm512_setzero_ps(),
                                         _CMP_NEQ_UQ);
        int k = __builtin_popcount(m);
        _mm512_mask_storeu_epi32(out + c, (__mmask16)((1u << k) - 1),
                                 _mm512_maskz_compress_epi32(m, offs));
        c += k;
    }
#endif
    for (; j < n; j++)
        if (x[j] != 0) out[c++] = (int32_t)(j * stride);
    return c;
}

static int64_t list_f64(const double *x, int64_t n, int64_t stride, int32_t *out) {
    int64_t c = 0;
    for (int64_t j = 0; j < n; j++)
        if (x[j] != 0) out[c++] = (int32_t)(j * stride);
    return c;
}

#define DEF_FLIST(NAME, RT, LIST)                                                        \
    static void NAME(void *c, int64_t item, void *scratch) {                            \
        (void)scratch;                                                                  \
        flists_t *L = (flists_t *)c;                                                    \
        int64_t s1 = (item + 1) * 64 < L->n_samples ? (item + 1) * 64 : L->n_samples;   \
        for (int64_t s = item * 64; s < s1; s++) {                                      \
            const RT *x = (const RT *)L->x + s * L->S;                                  \
            if (!L->idx) {                                                              \
                int64_t n = 0;                                                          \
                for (int64_t j = 0; j < L->S; j++) n += x[j] != 0;                      \
                L->offsets[s + 1] = n;                                                  \
            } else {                                                                    \
                LIST(x, L->S, L->stride, L->idx + L->offsets[s]);                       \
            }                                                                           \
        }                                                                               \
    }
DEF_FLIST(flist_f32, float, list_f32)
DEF_FLIST(flist_f64, double, list_f64)

/* offsets[s + 1] = offsets[s] + spikes in row s of x [n_samples, S] (kind 0: bytes 0/1,
   1: float32, 2: float64); returns the total, or -1 when memory ran out. */
int64_t snn_train_count(int kind, const void *x, int64_t n_samples, int64_t S,
                        int64_t *offsets, int n_threads) {
    offsets[0] = 0;
    int rc;
    if (kind == 0) {
        lists_t L = {x, n_samples, S, 0, offsets, NULL, 64};
        rc = parallel_for(count_item, &L, (n_samples + 63) / 64, n_threads, 0);
    } else {
        flists_t L = {kind, x, n_samples, S, 0, offsets, NULL};
        rc = parallel_for(kind == 1 ? flist_f32 : flist_f64, &L, (n_samples + 63) / 64,
                          n_threads, 0);
    }
    if (rc) return -1;
    for (int64_t s = 0; s < n_samples; s++) offsets[s + 1] += offsets[s];
    return offsets[n_samples];
}

/* idx[offsets[s] ..] = j * stride for every spiking source j of row s. */
int snn_train_fill(int kind, const void *x, int64_t n_samples, int64_t S, int64_t stride,
                   const int64_t *offsets, int32_t *idx, int n_threads) {
    if (kind == 0) {
        lists_t L = {x, n_samples, S, stride, (int64_t *)offsets, idx, 64};
        return parallel_for(fill_item, &L, (n_samples + 63) / 64, n_threads, 0);
    }
    flists_t L = {kind, x, n_samples, S, stride, (int64_t *)offsets, idx};
    return parallel_for(kind == 1 ? flist_f32 : flist_f64, &L, (n_samples + 63) / 64,
                        n_threads, 0);
}

typedef struct {
    int kind;
    int64_t rows, N, chunk;
    const int64_t *offsets;
    const int32_t *idx;
    const void *w;
    void *out; /* [rows, N] float32 (kind 0) or int32 */
    float *g;  /* wgrad: [rows, ld] */
    int64_t n_chunks;
    int64_t ld; /* wgrad: row stride of g and dw */
} tsum_t;

/* One item = (block of BLOCK columns, chunk of rows): the block's weights stay in L2 while
   the chunk's rows stream past. */
static void sum_item(void *ctx, int64_t item, void *scratch) {
    const tsum_t *E = (const tsum_t *)ctx;
    int64_t blk = item / E->n_chunks, ch = item % E->n_chunks;
    int64_t c0 = blk * BLOCK, n = E->N - c0 < BLOCK ? E->N - c0 : BLOCK;
    int nv = (int)((n + VL - 1) / VL);
    int64_t r1 = (ch + 1) * E->chunk < E->rows ? (ch + 1) * E->chunk : E->rows;
    for (int64_t s = ch * E->chunk; s < r1; s++) {
        const int32_t *idx = E->idx + E->offsets[s];
        int64_t m = E->offsets[s + 1] - E->offsets[s];
        /* the acc_* functions add into their output (8-bit: nv rounded up to even vectors) */
        memset(scratch, 0, (size_t)(nv + 1) * VBYTES);
        switch (E->kind) {
            case 0: acc_f32((const float *)E->w + c0, idx, m, nv, (vf *)scratch); break;
            case 1: acc_i8((const int8_t *)E->w + c0, idx, m, nv, (vi *)scratch); break;
            default: acc_i16((const int16_t *)E->w + c0, idx, m, nv, (vi *)scratch); break;
        }
        memcpy((char *)E->out + (s * E->N + c0) * 4, scratch, 4 * (size_t)n);
    }
}

/* out [rows, N] = for every row s, the sum of the weight rows w + idx[e] over its events
   (w: [S, Np] from snnkit.kernels.pad_weights: float32 (kind 0) into float32, int8 / int16
   (kinds 1, 2) into exact int32). Rows are rows of the list (offsets [rows + 1]). */
int snn_train_sum(int kind, int64_t rows, int64_t N, const int64_t *offsets,
                  const int32_t *idx, const void *w, void *out, int n_threads) {
    int64_t chunk = 64;
    tsum_t E = {kind, rows, N, chunk, offsets, idx, w, out, NULL, (rows + chunk - 1) / chunk, 0};
    return parallel_for(sum_item, &E, (N + BLOCK - 1) / BLOCK * E.n_chunks, n_threads,
                        (size_t)(NV + 2) * VBYTES);
}

/* The event lists by source: toff [S + 1], tidx [events] = s * ld for every row s in which
   source j spiked (rows ascending), from the lists by row (idx = j * stride). */
int snn_train_transpose(int64_t rows, int64_t S, int64_t stride, int64_t ld,
                        const int64_t *offsets, const int32_t *idx, int64_t *toff,
                        int32_t *tidx) {
    memset(toff, 0, sizeof(int64_t) * (size_t)(S + 1));
    int64_t n = offsets[rows] - offsets[0];
    const int32_t *e0 = idx + offsets[0];
    const double inv = 1.0 / (double)stride; /* idx is a multiple of stride: exact */
    int32_t *src = malloc(sizeof(int32_t) * (size_t)(n + 1));
    int64_t *pos = malloc(sizeof(int64_t) * (size_t)(S + 1));
    if (!src || !pos) {
        free(src);
        free(pos);
        return -1;
    }
    for (int64_t e = 0; e < n; e++) {
        src[e] = (int32_t)((double)e0[e] * inv + 0.5);
        toff[src[e] + 1]++;
    }
    for (int64_t j = 0; j < S; j++) toff[j + 1] += toff[j];
    memcpy(pos, toff, sizeof(int64_t) * (size_t)(S + 1));
    for (int64_t r = 0, e = 0; r < rows; r++)
        for (int64_t k = offsets[r + 1] - offsets[r]; k > 0; k--, e++)
            tidx[pos[src[e]]++] = (int32_t)(r * ld);
    free(src);
    free(pos);
    return 0;
}

#define WG_COLS 128 /* columns per weight-gradient item: 1600 steps x 128 stay in L2 */

/* One item = (block of WG_COLS columns, chunk of sources): each source's weight gradient
   row is the sum of the gradient rows of the steps in which it spiked, accumulated in
   registers (the forward's event sum, transposed) and written once. */
static void wgrad_item(void *ctx, int64_t item, void *scratch) {
    const tsum_t *E = (const tsum_t *)ctx;
    int64_t blk = item / E->n_chunks, ch = item % E->n_chunks;
    int64_t c0 = blk * WG_COLS, n = E->N - c0 < WG_COLS ? E->N - c0 : WG_COLS;
    int nv = (int)((n + VL - 1) / VL);
    int64_t j1 = (ch + 1) * E->chunk < E->rows ? (ch + 1) * E->chunk : E->rows;
    const float *sum = (const float *)scratch;
    for (int64_t j = ch * E->chunk; j < j1; j++) {
        memset(scratch, 0, (size_t)nv * VBYTES); /* acc_f32 adds into its output */
        acc_f32(E->g + c0, E->idx + E->offsets[j], E->offsets[j + 1] - E->offsets[j], nv,
                (vf *)scratch);
        float *d = (float *)E->out + j * E->N + c0;
        if (E->kind) /* accumulate */
            for (int64_t c = 0; c < n; c++) d[c] += sum[c];
        else
            memcpy(d, sum, sizeof(float) * (size_t)n);
    }
}

/* dw [S, N] = x^T g (accumulate: +=): row j = the sum of the rows of g [rows, ld] (ld >= N
   rounded up to the vector length; columns past N ignored) listed for source j by
   snn_train_transpose. */
int snn_train_wgrad(int64_t S, int64_t N, int64_t ld, const int64_t *toff, const int32_t *tidx,
                    const float *g, float *dw, int accumulate, int n_threads) {
    if (ld < (N + VL - 1) / VL * VL) return -2;
    int64_t chunk = 32;
    tsum_t E = {accumulate != 0, S, N, chunk, toff, tidx, NULL, dw, (float *)g,
                (S + chunk - 1) / chunk, ld};
    return parallel_for(wgrad_item, &E, (N + WG_COLS - 1) / WG_COLS * E.n_chunks, n_threads,
                        (size_t)(NV + 2) * VBYTES);
}
