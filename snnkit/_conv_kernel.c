/* Event-driven convolution sums for snnkit.conv (built and loaded by snnkit.conv).

   A dense convolution multiplies every kernel tap with every source, spiking or not; with
   binary spikes at a few percent activity almost all of that work is multiplying zeros. Here
   each spiking source (c, y, x) adds, for each kernel tap (ky, kx) that reaches an output
   position, the kernel's column w[g*cog : (g+1)*cog, c % cg, ky, kx] to that position's
   output channels: a contiguous vector add into a channels-last accumulator of one frame
   (in cache). The work is (spikes x taps per source x C_out/groups) adds instead of
   (outputs x fan-in) multiply-adds. Integer sums are exact (the caller checks that no partial
   sum leaves int32, or int16 for int16 sums); float sums differ from a dense convolution only
   in summation order.

   snn_conv_events writes each frame's sums out channel-major ([C_out, OH, OW], as
   torch.flatten). snn_conv_layer runs the target population too: per sample, step after
   step, the frame's sums go straight into the neuron update of _kernels.c (included here:
   the update is written once) while they are in L1, the state kept channels-last (the
   caller permutes the per-neuron parameters to match), and only the spikes are written out,
   channel-major: no [T, B, N] buffer of sums through memory.

   Frames (or, for snn_conv_layer, samples) are independent: n_threads threads take them in
   turn (_kernels.c's parallel_for). */

#include "_kernels.c" /* neuron_t, update_*, delayed_*, parallel_for */

typedef struct conv_s {
    int64_t C, H, W, CO, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, G;
    const uint8_t *x; /* spikes [N, C*H*W], bytes 0/1 */
    const void *w;    /* kernel [C, KH, KW, CO/G]: source channel, tap, its group's outputs */
    void *out;        /* sums [N, CO*OH*OW] */
    const int32_t *first, *taps; /* per source position: its (output offset, tap) pairs */
    int64_t junk;     /* slots after the outputs for padded taps (see tap_table) */
    int64_t N, chunk; /* frames, and how many a work item takes */
    void (*run)(const struct conv_s *, void *, int64_t, int64_t);
} conv_t;

/* 16 lanes, and 32 (two such vectors' worth: one add for 32 outputs a group) */
typedef float cvf __attribute__((vector_size(64), aligned(4), may_alias));
typedef float cvf2 __attribute__((vector_size(128), aligned(4), may_alias));
typedef int32_t cvi __attribute__((vector_size(64), aligned(4), may_alias));
typedef int32_t cvi2 __attribute__((vector_size(128), aligned(4), may_alias));
typedef int16_t cvh __attribute__((vector_size(32), aligned(2), may_alias));
typedef int16_t cvh2 __attribute__((vector_size(64), aligned(2), may_alias));

/* dst[d ...] += wc[k ...]: one output position's channels of the group. NVC: 1 or 2 for 16
   or 32 outputs a group (one vector add; a constant once inlined), else 0. */
#define TAP_ADD(TYPE, VEC, D, K)                                                             \
    do {                                                                                     \
        TYPE *d_ = dst + (D);                                                                \
        const TYPE *k_ = wc + (K);                                                           \
        if (NVC == 1)                                                                        \
            *(VEC *)d_ += *(const VEC *)k_;                                                  \
        else if (NVC == 2)                                                                   \
            *(VEC##2 *)d_ += *(const VEC##2 *)k_;                                            \
        else if (nv)                                                                         \
            for (int64_t j_ = 0; j_ < nv; j_++) ((VEC *)d_)[j_] += ((const VEC *)k_)[j_];    \
        else                                                                                 \
            for (int64_t j_ = 0; j_ < cog; j_++) d_[j_] += k_[j_];                           \
    } while (0)
/* The taps of the m listed spikes. Padded (junk > 0): the list holds each spike's offset
   in the table, junk taps of one int32 each, (output offset << 12) | kernel offset (half the
   table's bytes; no lookup in first: the adds' addresses come sooner, together ~20% off the
   workload); else pairs from taps[2*first[r]] to taps[2*first[r+1]]. */
#define TAP_LOOP(TYPE, VEC, IDX, M)                                                          \
    for (int64_t e = 0; e < (M); e++) {                                                      \
        if (junk) {                                                                          \
            const int32_t *t = taps + (IDX)[e];                                              \
            for (int64_t j = 0; j < junk; j++) TAP_ADD(TYPE, VEC, t[j] >> 12, t[j] & 4095);  \
        } else {                                                                             \
            const int32_t *t = taps + 2 * first[(IDX)[e]];                                   \
            const int32_t *te = taps + 2 * first[(IDX)[e] + 1];                              \
            for (; t < te; t += 2) TAP_ADD(TYPE, VEC, t[0], t[1]);                           \
        }                                                                                    \
    }
/* The sums of one frame into acc [OH*OW, CO] (channels-last, zeroed first, junk slots
   included): each spike of x [C, H*W] (listed per channel into list [H*W], branch-free where
   the CPU has AVX-512) adds its kernel columns to the outputs its taps reach. */
#define DEFINE_FRAME(NAME, TYPE, VEC)                                                        \
    static inline __attribute__((always_inline)) void NAME##_n(                             \
        const conv_t *a, const uint8_t *restrict x, TYPE *acc, int32_t *restrict list,       \
        const int NVC) {                                                                     \
        const int64_t HW = a->H * a->W, P = a->OH * a->OW, CO = a->CO;                       \
        const int64_t cog = a->CO / a->G, cg = a->C / a->G, KK = a->KH * a->KW;              \
        const int64_t nv = cog % 16 ? 0 : cog / 16;                                          \
        const TYPE *w = (const TYPE *)a->w;                                                  \
        /* locals: the vector stores below may alias anything, so fields of *a would be      \
           read again after each */                                                          \
        const int32_t *first = a->first, *taps = a->taps;                                    \
        const int64_t C = a->C, junk = a->junk;                                              \
        memset(acc, 0, sizeof(TYPE) * (size_t)((P + a->junk) * CO));                         \
        for (int64_t c = 0; c < C; c++) {                                                    \
            TYPE *dst = acc + (c / cg) * cog;                                                \
            const TYPE *wc = w + c * KK * cog;                                               \
            int64_t m = list_spikes(x + c * HW, HW, junk ? junk : 1, list);                  \
            TAP_LOOP(TYPE, VEC, list, m)                                                     \
        }                                                                                    \
    }                                                                                        \
    static void NAME(const conv_t *a, const uint8_t *x, TYPE *acc, int32_t *list) {         \
        const int64_t cog = a->CO / a->G;                                                    \
        if (cog == 16) NAME##_n(a, x, acc, list, 1);                                         \
        else if (cog == 32) NAME##_n(a, x, acc, list, 2);                                    \
        else NAME##_n(a, x, acc, list, 0);                                                   \
    }

DEFINE_FRAME(frame_f32, float, cvf)
DEFINE_FRAME(frame_i32, int32_t, cvi)
DEFINE_FRAME(frame_i16, int16_t, cvh)

/* Frames n0..n1 of snn_conv_events: sums, then written out channel-major. */
#define DEFINE_CONV(NAME, TYPE, FRAME)                                                       \
    static void NAME(const conv_t *a, void *acc_, int64_t n0, int64_t n1) {                  \
        const int64_t P = a->OH * a->OW, CO = a->CO, S = a->C * a->H * a->W;                 \
        TYPE *acc = acc_;                                                                    \
        int32_t *list = (int32_t *)(acc + CO * (P + a->junk));                               \
        for (int64_t n = n0; n < n1; n++) {                                                  \
            FRAME(a, a->x + n * S, acc, list);                                               \
            TYPE *o = (TYPE *)a->out + n * CO * P;                                           \
            for (int64_t ch = 0; ch < CO; ch++)                                              \
                for (int64_t p = 0; p < P; p++) o[ch * P + p] = acc[p * CO + ch];            \
        }                                                                                    \
    }

DEFINE_CONV(conv_f32, float, frame_f32)
DEFINE_CONV(conv_i32, int32_t, frame_i32)

/* One work item of snn_conv_events: a chunk of frames. Scratch: the accumulator and the
   spike lists. */
static void events_item(void *ctx, int64_t item, void *scratch) {
    const conv_t *a = (const conv_t *)ctx;
    int64_t n0 = item * a->chunk, n1 = n0 + a->chunk < a->N ? n0 + a->chunk : a->N;
    a->run(a, scratch, n0, n1);
}

/* The tap table of a: for each source position r = y*W + x, the outputs its taps reach, as
   pairs (offset of the output position in the channels-last accumulator, offset
   (ky*KW + kx) * C_out/G of the tap's kernel column in its channel's kernel), from
   taps[2*first[r]] to taps[2*first[r+1]].
   Padded (a->junk > 0) where that adds at most PAD_MAX times the real taps and the offsets
   fit: every position has the most taps any has, packed one int32 a tap (see TAP_LOOP), the extra ones adding to junk slots after the outputs (slot j
   for a position's j-th tap, so that no chain of adds runs through one slot). The tap loop
   then runs the same count for every spike, which the branch predictor follows (a count
   varying from spike to spike, 1, 2 or 4 taps with stride 2, cost a branch miss per spike:
   ~10% of the second layer's time in the conv workload; sorting the spikes by position
   class, so that the count is the same within a class without padding, measured no faster).
   Returns 0, or -1 when memory ran out. */
#define PAD_MAX 2.5
static int tap_table(const int64_t *g, conv_t *a) {
    int64_t H = g[1], W = g[2], CO = g[3], OH = g[4], OW = g[5], KH = g[6], KW = g[7];
    int64_t SH = g[8], SW = g[9], PH = g[10], PW = g[11], DH = g[12], DW = g[13];
    int32_t *first = malloc(sizeof(int32_t) * (size_t)(H * W + 1));
    int32_t *taps = malloc(sizeof(int32_t) * 2 * (size_t)(H * W * KH * KW + 1));
    if (!first || !taps) { free(first); free(taps); return -1; }
    int64_t m = 0, most = 0;
    for (int pass = 0; pass < 2; pass++) {
        int pad = pass == 1;
        /* padded taps pack into one int32: output offsets below 2^19, kernel ones 2^12 */
        if (pad && (most * H * W > PAD_MAX * m || most * H * W == m ||
                    (OH * OW + most) * CO >= (1 << 19) || KH * KW * (CO / g[14]) >= (1 << 12)))
            break;
        m = 0;
        for (int64_t iy = 0; iy < H; iy++)
            for (int64_t ix = 0; ix < W; ix++) {
                int64_t m0 = m;
                first[iy * W + ix] = (int32_t)m;
                for (int64_t ky = 0; ky < KH; ky++) {
                    int64_t ty = iy + PH - ky * DH;
                    if (ty < 0 || ty % SH || ty / SH >= OH) continue;
                    for (int64_t kx = 0; kx < KW; kx++) {
                        int64_t tx = ix + PW - kx * DW;
                        if (tx < 0 || tx % SW || tx / SW >= OW) continue;
                        taps[2 * m] = (int32_t)(((ty / SH) * OW + tx / SW) * CO);
                        taps[2 * m + 1] = (int32_t)((ky * KW + kx) * (CO / g[14]));
                        m++;
                    }
                }
                most = m - m0 > most ? m - m0 : most;
                for (; pad && m - m0 < most; m++) {
                    taps[2 * m] = (int32_t)((OH * OW + m - m0) * CO);
                    taps[2 * m + 1] = 0;
                }
            }
        first[H * W] = (int32_t)m;
        a->junk = pad ? most : 0;
        for (int64_t k = 0; pad && k < m; k++)  /* in place: k <= 2k */
            taps[k] = taps[2 * k] << 12 | taps[2 * k + 1];
    }
    a->first = first, a->taps = taps;
    return 0;
}

static void free_taps(conv_t *a) {
    free((void *)a->first);
    free((void *)a->taps);
}

/* kind 0: float32 kernel and sums, 1: int32. geom: C, H, W, CO, OH, OW, KH, KW, SH, SW, PH,
   PW, DH, DW, G. Returns 0, -1 when memory ran out, -2 for a bad kind. */
int snn_conv_events(int kind, int64_t N, const int64_t *geom, const uint8_t *x, const void *w,
                    void *out, int n_threads) {
    if (kind != 0 && kind != 1) return -2;
    if (N <= 0) return 0;
    if (n_threads < 1) n_threads = 1;
    conv_t a;
    memset(&a, 0, sizeof a);
    memcpy(&a.C, geom, 15 * sizeof(int64_t));
    if (tap_table(geom, &a)) return -1;
    a.x = x, a.w = w, a.out = out, a.run = kind ? conv_i32 : conv_f32;
    a.N = N, a.chunk = N / (8 * n_threads) > 1 ? N / (8 * n_threads) : 1;
    int rc = parallel_for(events_item, &a, (N + a.chunk - 1) / a.chunk, n_threads,
                          4 * (size_t)((a.OH * a.OW + a.junk) * a.CO + a.H * a.W));
    free_taps(&a);
    return rc;
}

/* ------------------------------------------------------------------ sums and neurons fused */

typedef struct {
    conv_t a;         /* the geometry, kernel and tap table (x, out, N unused) */
    int64_t T, B;
    int64_t block;    /* neurons per update call (see snn_conv_layer) */
    const uint8_t *x; /* source spikes [T, B, C*H*W] */
    neuron_t p;       /* the target's parameters, channels-last [OH*OW, CO] */
    uint8_t *spikes;  /* [T, B, CO*OH*OW], channel-major */
    void *rec[3];     /* recorded v, i, theta [T, B, CO*OH*OW] channel-major, or NULL */
} clayer_t;

#if defined(__SSE2__)
#include <emmintrin.h>
/* o[c * lo + p] = s[p * ls + c] for a 16 x 16 block of bytes: four rounds of interleaving
   rows i and i + 8. */
static inline void transpose16(const uint8_t *s, int64_t ls, uint8_t *o, int64_t lo) {
    __m128i a[16], b[16];
    for (int i = 0; i < 16; i++) a[i] = _mm_loadu_si128((const __m128i *)(s + i * ls));
    for (int r = 0; r < 4; r++) {
        for (int i = 0; i < 8; i++) {
            b[2 * i] = _mm_unpacklo_epi8(a[i], a[i + 8]);
            b[2 * i + 1] = _mm_unpackhi_epi8(a[i], a[i + 8]);
        }
        memcpy(a, b, sizeof a);
    }
    for (int i = 0; i < 16; i++) _mm_storeu_si128((__m128i *)(o + i * lo), a[i]);
}
#endif

/* Spikes s (bytes, channels-last [P, CO]) into o (channel-major [CO, P]): 16 x 16 blocks
   transposed in registers where C_out is a multiple of 16 (a scan for the few ones took a
   branch miss per spike, ~30% of the fused layer's time), the rest byte by byte. */
static void scatter_spikes(const uint8_t *restrict s, int64_t P, int64_t CO,
                           uint8_t *restrict o) {
    int64_t p0 = 0;
#if defined(__SSE2__)
    if (CO % 16 == 0)
        for (; p0 + 16 <= P; p0 += 16)
            for (int64_t k = 0; k < CO; k += 16)
                transpose16(s + p0 * CO + k, CO, o + k * P + p0, P);
#endif
    for (int64_t p = p0; p < P; p++)
        for (int64_t ch = 0; ch < CO; ch++) o[ch * P + p] = s[p * CO + ch];
}

/* A recorded state: channels-last v [P, CO] into o channel-major (32-bit values). */
static void store_state(const uint32_t *restrict v, int64_t P, int64_t CO,
                        uint32_t *restrict o) {
    for (int64_t ch = 0; ch < CO; ch++)
        for (int64_t p = 0; p < P; p++) o[ch * P + p] = v[p * CO + ch];
}

/* One item = one sample b, all T steps: per step its frame's sums (x), the delayed reset's
   inputs from its spikes one and two steps ago (a ring of three channels-last frames), the
   neuron update, the spikes scattered out. Scratch: 5 * N + junk * CO + H * W (rounded up to
   16) 32-bit words, N + junk * CO 16-bit ones (kind 2) and 3 * N bytes. */
#define DEFINE_LAYER(NAME, ST, FRAME, DELAYED, UPD)                                          \
    static void NAME(void *ctx, int64_t b, void *scratch) {                                  \
        const clayer_t *L = (const clayer_t *)ctx;                                           \
        const conv_t *a = &L->a;                                                             \
        const neuron_t *p = &L->p;                                                           \
        const int64_t P = a->OH * a->OW, CO = a->CO, N = P * CO, S = a->C * a->H * a->W;     \
        ST *x = (ST *)scratch, *V = x + N + a->junk * CO, *I = V + N, *TH = I + N;           \
        int32_t *R = (int32_t *)(TH + N);                                                    \
        int32_t *list = R + N;                                                               \
        /* on a cache line (the scratch is): a 32-output int16 add then never splits */      \
        int16_t *acc16 = (int16_t *)(list + (a->H * a->W + 15) / 16 * 16);                   \
        uint8_t *ring = (uint8_t *)(acc16 + N + a->junk * CO);                               \
        (void)acc16;                                                                         \
        for (int64_t c = 0; c < N; c++) {                                                    \
            V[c] = ((const ST *)p->v_init)[c];                                               \
            I[c] = TH[c] = 0;                                                                \
            R[c] = 0;                                                                        \
        }                                                                                    \
        for (int64_t t = 0; t < L->T; t++) {                                                 \
            int64_t s = t * L->B + b;                                                        \
            uint8_t *s0 = ring + t % 3 * N;                                                  \
            FRAME(a, L->x + s * S, x, list, acc16);                                          \
            const uint8_t *s1 = t >= 1 ? ring + (t + 2) % 3 * N : NULL;                      \
            const uint8_t *s2 = t >= 2 ? ring + (t + 1) % 3 * N : NULL;                      \
            for (int64_t c = 0; c < N; c += L->block) {                                      \
                int64_t n = N - c < L->block ? N - c : L->block;                             \
                DELAYED(n, p, 0, s1 ? s1 + c : NULL, s2 ? s2 + c : NULL, x + c);             \
                UPD(n, p, 0, x + c, V + c, I + c, TH + c, R + c, s0 + c);                    \
            }                                                                                \
            scatter_spikes(s0, P, CO, L->spikes + s * N);                                    \
            const ST *st[3] = {V, I, TH};                                                    \
            for (int k = 0; k < 3; k++)                                                      \
                if (L->rec[k])                                                               \
                    store_state((const uint32_t *)st[k], P, CO, (uint32_t *)L->rec[k] + s * N); \
        }                                                                                    \
    }

/* The frame sums as DEFINE_LAYER takes them: in the state type, or in int16 (acc16) and then
   widened (fixed point, where no partial sum leaves int16: half the bytes a tap, one vector
   add for 32 outputs a group) */
static inline void sums_f32(const conv_t *a, const uint8_t *x, float *out, int32_t *list,
                            int16_t *acc16) {
    (void)acc16;
    frame_f32(a, x, out, list);
}
static inline void sums_i32(const conv_t *a, const uint8_t *x, int32_t *out, int32_t *list,
                            int16_t *acc16) {
    (void)acc16;
    frame_i32(a, x, out, list);
}
static inline void sums_i16(const conv_t *a, const uint8_t *x, int32_t *restrict out,
                            int32_t *list, int16_t *restrict acc16) {
    frame_i16(a, x, acc16, list);
    for (int64_t c = 0, n = a->OH * a->OW * a->CO; c < n; c++) out[c] = acc16[c];
}

DEFINE_LAYER(layer_f32, float, sums_f32, delayed_f32, update_f32)
DEFINE_LAYER(layer_i32, int32_t, sums_i32, delayed_i32, update_i32)
DEFINE_LAYER(layer_i16, int32_t, sums_i16, delayed_i32, update_i32)

/* Run a population fed by one convolution of binary spikes over T steps. kind 0: float32
   kernel and states, 1: int32 (fixed point: exact sums, the caller checks that none leaves
   int32), 2: int16 kernel and sums, int32 states (the caller checks that no sum leaves
   int16). geom as snn_conv_events; x: spikes [T, B, C*H*W] bytes 0/1; w: kernel as
   snn_conv_events; p: parameters in channels-last order (v_init included); block: a multiple
   of C_out after which the parameters other than v_init repeat (they are per channel: the
   update then runs block by block on the first block's, ~5 KB of them in L1 rather than
   ~70 KB through L2 for the workload's first layer), or 0 (they do not); spikes: output
   [T, B, N] bytes; rec_*: recorded states [T, B, N] or NULL (both channel-major). Returns 0,
   -1 when memory ran out, -2 for a bad kind. */
int snn_conv_layer(int kind, int64_t T, int64_t B, const int64_t *geom, const uint8_t *x,
                   const void *w, const neuron_t *p, int64_t block, uint8_t *spikes,
                   void *rec_v, void *rec_i, void *rec_theta, int n_threads) {
    if (kind < 0 || kind > 2) return -2;
    if (T <= 0 || B <= 0) return 0;
    clayer_t L;
    memset(&L, 0, sizeof L);
    memcpy(&L.a.C, geom, 15 * sizeof(int64_t));
    if (tap_table(geom, &L.a)) return -1;
    L.a.w = w;
    L.T = T, L.B = B, L.x = x, L.p = *p, L.spikes = spikes;
    L.block = block > 0 && block < geom[3] * geom[4] * geom[5] ? block : geom[3] * geom[4] * geom[5];
    L.rec[0] = rec_v, L.rec[1] = rec_i, L.rec[2] = rec_theta;
    int64_t N = geom[3] * geom[4] * geom[5];
    void (*item)(void *, int64_t, void *) = kind == 0 ? layer_f32 : kind == 1 ? layer_i32 : layer_i16;
    int rc = parallel_for(item, &L, B, n_threads,
                          (size_t)N * (5 * 4 + 3) +
                              6 * (size_t)(L.a.junk * geom[3]) + 2 * (size_t)N +
                              4 * (size_t)((geom[1] * geom[2] + 15) / 16 * 16));
    free_taps(&L.a);
    return rc;
}
