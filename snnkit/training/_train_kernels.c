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

/* dS/dx of snnkit/surrogate.py, same formulas and order of operations; kp = pi/2 * k,
   rounded from double as torch rounds a Python scalar. */
#define DEF_SG(NAME, RT)                                                                \
    static inline RT NAME(int kind, RT k, RT kp, RT x) {                                \
        RT a;                                                                           \
        switch (kind) {                                                                 \
            case 0: a = 1 + k * (x < 0 ? -x : x); return 1 / (a * a);                   \
            case 1: a = kp * x; return (k / 2) / (1 + a * a);                           \
            case 2: a = 1 - k * (x < 0 ? -x : x); return a > 0 ? k * a : 0;             \
            default: return k;                                                          \
        }                                                                               \
    }
DEF_SG(sg_f32, float)
DEF_SG(sg_f64, double)

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
    uint8_t *flags;                /* [T, B, N] or NULL */
    void *vprev, *iprev;           /* [T, B, N] v and i before the step, or NULL */
    void *rec_v, *rec_i, *rec_th;  /* [T, B, N] states after the step, or NULL */
} tfwd_t;

#define DEF_FWD(NAME, RT, SAT, DECAY, SG)                                               \
    static void NAME(void *ctx, int64_t item, void *scratch) {                          \
        (void)scratch;                                                                  \
        const tfwd_t *F = (const tfwd_t *)ctx;                                          \
        const tneuron_t *p = &F->p;                                                     \
        const int64_t N = F->N, c0 = item * F->blk;                                     \
        const int64_t n = N - c0 < F->blk ? N - c0 : F->blk;                            \
        const RT *alpha = (const RT *)p->alpha + c0, *beta = (const RT *)p->beta + c0;  \
        const RT *threshold = (const RT *)p->threshold + c0;                            \
        const RT *v_reset = (const RT *)p->v_reset + c0, *bias = (const RT *)p->bias + c0; \
        const RT *adapt_plus = (const RT *)p->adapt_plus + c0;                          \
        const RT *adapt_decay = (const RT *)p->adapt_decay + c0;                        \
        const RT lo = (RT)p->lo, hi = (RT)p->hi, lsb = (RT)p->lsb, k = (RT)p->slope;            \
        const RT kp = (RT)(1.5707963267948966 * p->slope);    \
        const RT half = p->decay_bits ? (RT)pow2(p->decay_bits - 1) : 0;          \
        const RT inv = (RT)pow2(-p->decay_bits);                                  \
        const int has_alpha = p->has_alpha, has_bias = p->has_bias;                     \
        const int subtract = p->subtract, adaptive = p->adaptive, kind = p->surrogate;  \
        const int32_t refractory = p->refractory;                                       \
        (void)lo, (void)hi, (void)half, (void)inv, (void)kp;                                      \
        for (int64_t b = 0; b < F->B; b++) {                                            \
            RT *V = (RT *)F->v + b * N + c0, *I = (RT *)F->i + b * N + c0;              \
            RT *TH = (RT *)F->th + b * N + c0;                                          \
            int32_t *R = F->r + b * N + c0;                                             \
            for (int64_t t = 0; t < F->T; t++) {                                        \
                const int64_t o = (t * F->B + b) * N + c0;                              \
                const RT *x = (const RT *)F->x + o;                                     \
                RT *S = (RT *)F->spikes + o;                                            \
                for (int64_t c = 0; c < n; c++) {                                       \
                    const RT iold = I[c], vold = V[c], thold = TH[c];                   \
                    /* 3. synaptic current */                                           \
                    const RT ipre = has_alpha ? DECAY(iold, alpha[c]) + x[c] : x[c];    \
                    const RT i = SAT(ipre);                                             \
                    /* 4. membrane: one saturation of the three-term sum */             \
                    RT u = DECAY(vold, beta[c]) + i;                                    \
                    if (has_bias) u = u + bias[c];                                      \
                    const RT vs = SAT(u);                                               \
                    const int32_t r = R[c];                                             \
                    const int active = r == 0;                                          \
                    const RT v = active ? vs : vold;                                    \
                    /* 5. spike */                                                      \
                    const RT thr = adaptive ? threshold[c] + thold : threshold[c];      \
                    const int spk = (v >= thr) & active;                                \
                    /* 6. reset */                                                      \
                    const RT vrp = v - thr;                                             \
                    const RT vr = subtract ? SAT(vrp) : v_reset[c];                     \
                    V[c] = spk ? vr : v;                                                \
                    I[c] = i;                                                           \
                    /* 7. refractory counter, 8. homeostasis */                         \
                    if (refractory) R[c] = spk ? refractory : (r > 0 ? r - 1 : 0);      \
                    RT thp = 0;                                                         \
                    if (adaptive) {                                                     \
                        thp = DECAY(thold, adapt_decay[c]) + (spk ? adapt_plus[c] : 0); \
                        TH[c] = SAT(thp);                                               \
                    }                                                                   \
                    S[c] = (RT)spk;                                                     \
                    if (F->h) ((RT *)F->h)[o + c] = active ? SG(kind, k, kp, vrp * lsb) * lsb : 0; \
                    if (F->flags)                                                       \
                        F->flags[o + c] = (uint8_t)(spk | active << 1 | (ipre == i) << 2 \
                                                    | (u == vs) << 3 | (vrp == vr) << 4 \
                                                    | (thp == TH[c]) << 5);             \
                    if (F->vprev) ((RT *)F->vprev)[o + c] = vold;                       \
                    if (F->iprev) ((RT *)F->iprev)[o + c] = iold;                       \
                }                                                                       \
                if (F->rec_v) memcpy((RT *)F->rec_v + o, V, sizeof(RT) * n);            \
                if (F->rec_i) memcpy((RT *)F->rec_i + o, I, sizeof(RT) * n);            \
                if (F->rec_th) memcpy((RT *)F->rec_th + o, TH, sizeof(RT) * n);         \
            }                                                                           \
        }                                                                               \
    }

DEF_FWD(fwd_f32, float, T_SAT_F, T_DECAY_F, sg_f32)
DEF_FWD(fwd_f64, double, T_SAT_D, T_DECAY_D, sg_f64)

typedef struct {
    int64_t T, B, N, blk;
    tneuron_t p;
    const void *gs, *gv, *gi, *gth;    /* [T, B, N] output gradients (gv.. may be NULL) */
    const void *h;
    const uint8_t *flags;
    const void *vprev, *iprev;         /* NULL unless beta / alpha need a gradient */
    void *cv, *ci, *cth;               /* [B, N] gradients carried to the step before */
    void *gx;                          /* [T, B, N] out: gradient of the synaptic input */
    double *g_alpha, *g_beta, *g_thr, *g_bias; /* [N] accumulated, or NULL */
} tbwd_t;

#define DEF_BWD(NAME, RT, EFF)                                                          \
    static void NAME(void *ctx, int64_t item, void *scratch) {                          \
        const tbwd_t *G = (const tbwd_t *)ctx;                                          \
        const tneuron_t *p = &G->p;                                                     \
        const int64_t N = G->N, c0 = item * G->blk;                                     \
        const int64_t n = N - c0 < G->blk ? N - c0 : G->blk;                           \
        const RT *alpha = (const RT *)p->alpha + c0, *beta = (const RT *)p->beta + c0;  \
        const RT *adapt_decay = (const RT *)p->adapt_decay + c0;                        \
        const RT inv = (RT)pow2(-p->decay_bits);                                  \
        const int has_alpha = p->has_alpha, subtract = p->subtract;                     \
        const int adaptive = p->adaptive;                                               \
        (void)inv;                                                                      \
        double *acc = (double *)scratch; /* 4 x blk: alpha, beta, threshold, bias */    \
        memset(acc, 0, sizeof(double) * 4 * (size_t)G->blk);                            \
        double *ga = acc, *gb = acc + G->blk, *gt = acc + 2 * G->blk, *gbi = acc + 3 * G->blk; \
        for (int64_t b = 0; b < G->B; b++) {                                            \
            RT *CV = (RT *)G->cv + b * N + c0, *CI = (RT *)G->ci + b * N + c0;          \
            RT *CT = (RT *)G->cth + b * N + c0;                                         \
            for (int64_t t = G->T - 1; t >= 0; t--) {                                   \
                const int64_t o = (t * G->B + b) * N + c0;                              \
                const RT *gs = (const RT *)G->gs + o, *h = (const RT *)G->h + o;        \
                const uint8_t *fl = G->flags + o;                                       \
                RT *gx = (RT *)G->gx + o;                                               \
                for (int64_t c = 0; c < n; c++) {                                       \
                    const int f = fl[c];                                                \
                    /* gradients of the state after the step: carried + recorded */     \
                    RT gvp = CV[c], gi = CI[c], gth = CT[c];                            \
                    if (G->gv) gvp += ((const RT *)G->gv)[o + c];                       \
                    if (G->gi) gi += ((const RT *)G->gi)[o + c];                        \
                    if (G->gth) gth += ((const RT *)G->gth)[o + c];                     \
                    /* 8. theta = sat(decay(theta, ad) + spike * ap), spike detached */ \
                    RT gthp = adaptive && (f & F_TH_IN) ? gth * EFF(adapt_decay[c]) : 0; \
                    /* 6. reset: a spike selects sat(v - thr) or v_reset */             \
                    RT gv, gthr;                                                        \
                    if (f & F_SPIKE) {                                                  \
                        gv = subtract && (f & F_R_IN) ? gvp : 0;                        \
                        gthr = -gv;                                                     \
                    } else {                                                            \
                        gv = gvp;                                                       \
                        gthr = 0;                                                       \
                    }                                                                   \
                    /* 5. spike = S(v - thr), the surrogate's derivative */             \
                    const RT gsp = gs[c] * h[c];                                        \
                    gv += gsp;                                                          \
                    gthr -= gsp;                                                        \
                    gt[c] += gthr;                                                      \
                    if (adaptive) gthp += gthr;                                         \
                    /* 4. v = active ? sat(decay(v, beta) + i + bias) : v */            \
                    RT gu = 0, gvprev = 0;                                              \
                    if (f & F_ACTIVE)                                                   \
                        gu = f & F_V_IN ? gv : 0;                                       \
                    else                                                                \
                        gvprev = gv;                                                    \
                    gvprev += gu * EFF(beta[c]);                                        \
                    if (G->vprev) gb[c] += gu * EFF(((const RT *)G->vprev)[o + c]);     \
                    gbi[c] += gu;                                                       \
                    gi += gu;                                                           \
                    /* 3. i = sat(decay(i, alpha) + x) */                               \
                    const RT gpre = f & F_I_IN ? gi : 0;                                \
                    gx[c] = gpre;                                                       \
                    if (G->iprev) ga[c] += gpre * EFF(((const RT *)G->iprev)[o + c]);   \
                    CV[c] = gvprev;                                                     \
                    CI[c] = has_alpha ? gpre * EFF(alpha[c]) : 0;                       \
                    CT[c] = gthp;                                                       \
                }                                                                       \
            }                                                                           \
        }                                                                               \
        for (int64_t c = 0; c < n; c++) {                                               \
            if (G->g_alpha) G->g_alpha[c0 + c] += ga[c];                                \
            if (G->g_beta) G->g_beta[c0 + c] += gb[c];                                  \
            if (G->g_thr) G->g_thr[c0 + c] += gt[c];                                    \
            if (G->g_bias) G->g_bias[c0 + c] += gbi[c];                                 \
        }                                                                               \
    }

DEF_BWD(bwd_f32, float, T_EFF_F)
DEF_BWD(bwd_f64, double, T_EFF_D)

/* Columns per work item: small enough that every thread gets items, a multiple of 16. */
static int64_t scan_block(int64_t N, int n_threads) {
    int64_t blk = 256;
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

/* The time-reversed recurrence: gx [T, B, N] from the spikes' gradients gs (and those of
   the recorded states gv, gi, gth, each may be NULL), the forward's h and flags (vprev /
   iprev when g_beta / g_alpha are wanted). cv, ci, cth: [B, N] gradients of the state after
   the last step, in; of the state before the first step, out. g_*: [N] doubles, added to. */
int snn_train_backward(int dbl, int64_t T, int64_t B, int64_t N, const tneuron_t *p,
                       const void *gs, const void *gv, const void *gi, const void *gth,
                       const void *h, const uint8_t *flags, const void *vprev,
                       const void *iprev, void *cv, void *ci, void *cth, void *gx,
                       double *g_alpha, double *g_beta, double *g_thr, double *g_bias,
                       int n_threads) {
    int64_t blk = scan_block(N, n_threads);
    tbwd_t G = {T, B, N, blk, *p, gs, gv, gi, gth, h, flags, vprev, iprev, cv, ci, cth, gx,
                g_alpha, g_beta, g_thr, g_bias};
    return parallel_for(dbl ? bwd_f64 : bwd_f32, &G, (N + blk - 1) / blk, n_threads,
                        sizeof(double) * 4 * (size_t)blk);
}

/* ------------------------------------------------------------------ event lists and sums */

/* offsets[s + 1] = offsets[s] + spikes in row s of x [n_samples, S] (bytes 0/1); returns
   the total. */
int64_t snn_train_count(const uint8_t *x, int64_t n_samples, int64_t S, int64_t *offsets,
                        int n_threads) {
    lists_t L = {x, n_samples, S, 0, offsets, NULL, 64};
    offsets[0] = 0;
    if (parallel_for(count_item, &L, (n_samples + 63) / 64, n_threads, 0)) return -1;
    for (int64_t s = 0; s < n_samples; s++) offsets[s + 1] += offsets[s];
    return offsets[n_samples];
}

/* idx[offsets[s] ..] = j * stride for every spiking source j of row s. */
int snn_train_fill(const uint8_t *x, int64_t n_samples, int64_t S, int64_t stride,
                   const int64_t *offsets, int32_t *idx, int n_threads) {
    lists_t L = {x, n_samples, S, stride, (int64_t *)offsets, idx, 64};
    return parallel_for(fill_item, &L, (n_samples + 63) / 64, n_threads, 0);
}

typedef struct {
    int kind;
    int64_t rows, N, chunk;
    const int64_t *offsets;
    const int32_t *idx;
    const void *w;
    void *out; /* [rows, N] float32 (kind 0) or int32 */
    float *g;  /* wgrad: [rows, N] */
    int64_t n_chunks;
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
    tsum_t E = {kind, rows, N, chunk, offsets, idx, w, out, NULL, (rows + chunk - 1) / chunk};
    return parallel_for(sum_item, &E, (N + BLOCK - 1) / BLOCK * E.n_chunks, n_threads,
                        (size_t)(NV + 2) * VBYTES);
}

/* One item = one block of columns of dw, over all rows (no two items write the same
   weights). */
static void wgrad_item(void *ctx, int64_t item, void *scratch) {
    const tsum_t *E = (const tsum_t *)ctx;
    int64_t c0 = item * BLOCK, n = E->N - c0 < BLOCK ? E->N - c0 : BLOCK;
    int nv = (int)((n + VL - 1) / VL);
    float *gb = (float *)scratch;
    memset(gb, 0, (size_t)nv * VBYTES);
    float *dw = (float *)E->out + c0;
    for (int64_t s = 0; s < E->rows; s++) {
        int64_t e0 = E->offsets[s], e1 = E->offsets[s + 1];
        if (e0 == e1) continue;
        memcpy(gb, E->g + s * E->N + c0, sizeof(float) * (size_t)n);
        const vf *g = (const vf *)gb;
        for (int64_t e = e0; e < e1; e++) {
            vf *d = (vf *)(dw + E->idx[e]);
            for (int k = 0; k < nv; k++) d[k] += g[k];
        }
    }
}

/* dw [S, Np] (padded as the weights; columns past N get zeros) += for every event (s, j)
   the row g[s, :N]: the weight gradient sum over rows of g^T x. */
int snn_train_wgrad(int64_t rows, int64_t N, const int64_t *offsets, const int32_t *idx,
                    const float *g, float *dw, int n_threads) {
    tsum_t E = {0, rows, N, 0, offsets, idx, NULL, dw, (float *)g, 0};
    return parallel_for(wgrad_item, &E, (N + BLOCK - 1) / BLOCK, n_threads,
                        (size_t)NV * VBYTES);
}
