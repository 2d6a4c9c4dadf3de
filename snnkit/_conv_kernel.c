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
   torch.flatten). snn_conv_layer runs the target population too: step after step, sample
   after sample, the frame's sums go straight into the neuron update of _kernels.c (included
   here: the update is written once) while they are in L1, the state kept channels-last (the
   caller permutes the per-neuron parameters to match), and only the spikes are written out,
   channel-major: no [T, B, N] buffer of sums through memory.

   Frames (or, for snn_conv_layer, groups of samples) are independent: n_threads threads take
   them in turn (_kernels.c's parallel_for). */

#include "_kernels.c" /* neuron_t, update_*, delayed_*, parallel_for */

#define MAX_CLASSES 31 /* the class is a listed spike's upper 5 bits */
typedef struct conv_s {
    int64_t C, H, W, CO, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW, G;
    const uint8_t *x; /* spikes [N, C*H*W], bytes 0/1 */
    const void *w;    /* kernel [C, KH, KW, CO/G]: source channel, tap, its group's outputs */
    void *out;        /* sums [N, CO*OH*OW] */
    const int32_t *first, *taps; /* the tap table (see tap_table) */
    const int32_t *code; /* per source position: what the spike lists hold (see tap_table) */
    int64_t classes;  /* classes of source positions (0: pair table), the first `regular` */
    int64_t regular;
    int64_t shift, cb; /* classes: a listed spike is (channel << shift) | its position's value;
                          the channels listed together */
    int64_t count[MAX_CLASSES]; /* taps a position of each class has */
    const int32_t *rel, *kof; /* regular class k's taps in the order of their outputs, at
                                 k * KH * KW: output offsets from the position's first (run
                                 by run: where its runs start), kernel offsets */
    int64_t runs[16], rlen[16]; /* regular class k's taps: runs[k] runs of adjacent outputs,
                                   rlen[k] taps each (1 where the runs are not alike) */
    void *wr;         /* the kernel by regular class: [class k][C][count[k]][CO/G] */
    int64_t wofs[16]; /* where class k's begins in wr (elements) */
    int64_t lwords;   /* int32 words of the spike lists (scratch), a multiple of 16 */
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
        if (NVC == 1)                                                                   \
            *(VEC *)d_ += *(const VEC *)k_;                                                  \
        else if (NVC == 2)                                                                   \
            *(VEC##2 *)d_ += *(const VEC##2 *)k_;                                            \
        else if (nv)                                                                         \
            for (int64_t j_ = 0; j_ < nv; j_++) ((VEC *)d_)[j_] += ((const VEC *)k_)[j_];    \
        else                                                                                 \
            for (int64_t j_ = 0; j_ < cog; j_++) d_[j_] += k_[j_];                           \
    } while (0)
/* The codes of the spiking positions of x [n] (bytes 0/1; code [n]), plus add, into out,
   which has room for n rounded up to 16, plus 16 (whole-vector stores); returns the count.
   Branch-free where the CPU has AVX-512 (a loop over set bits mispredicts once per word). */
static int64_t list_codes(const uint8_t *restrict x, int64_t n, const int32_t *restrict code,
                          int32_t add, int32_t *restrict out) {
    int64_t c = 0, j = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    const __m512i va = _mm512_set1_epi32(add);
    for (; j + 64 <= n; j += 64) {
        const __m512i b = _mm512_loadu_si512((const void *)(x + j));
        const uint64_t m = _mm512_test_epi8_mask(b, b);
        /* each quarter's place from popcounts of m's low bits, all off the chain through c
           (a popcount a quarter added to c in turn: ~7 cycles a quarter, most of the pass) */
        const int64_t at[4] = {c, c + __builtin_popcountll(m & 0xffff),
                               c + __builtin_popcountll(m & 0xffffffff),
                               c + __builtin_popcountll(m & 0xffffffffffff)};
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
            const __m512i v = _mm512_add_epi32(
                _mm512_loadu_si512((const void *)(code + j + 16 * q)), va);
            _mm512_storeu_si512((void *)(out + at[q]),
                                _mm512_maskz_compress_epi32((__mmask16)(m >> (16 * q)), v));
        }
        c += __builtin_popcountll(m);
    }
    for (; j < n; j += 16) {
        const __mmask16 ok = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1);
        const __m128i b = _mm_maskz_loadu_epi8(ok, x + j);
        const __mmask16 m = _mm_test_epi8_mask(b, b);
        const __m512i v = _mm512_add_epi32(_mm512_maskz_loadu_epi32(ok, code + j), va);
        _mm512_storeu_si512((void *)(out + c), _mm512_maskz_compress_epi32(m, v));
        c += __builtin_popcount(m);
    }
#endif
    for (; j < n; j++)
        if (x[j]) out[c++] = code[j] + add;
    return c;
}

/* The m codes of in appended to their class's list (code >> CLS; class K, positions without
   taps, dropped), the class bits cleared: class k's list at out + k * cap, nb[k] long. */
#define CLS 26
static void split_codes(const int32_t *restrict in, int64_t m, int64_t K, int32_t *restrict out,
                        int64_t cap, int64_t *restrict nb) {
    int64_t e = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    for (; e < m; e += 16) {
        const __mmask16 ok = m - e >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (m - e)) - 1);
        const __m512i u = _mm512_maskz_loadu_epi32(ok, in + e);
        const __m512i cls = _mm512_srli_epi32(u, CLS);
        const __m512i v = _mm512_and_si512(u, _mm512_set1_epi32((1 << CLS) - 1));
        for (int64_t k = 0; k < K; k++) {
            const __mmask16 mk = _mm512_mask_cmpeq_epi32_mask(ok, cls, _mm512_set1_epi32((int)k));
            _mm512_storeu_si512((void *)(out + k * cap + nb[k]),
                                _mm512_maskz_compress_epi32(mk, v));
            nb[k] += __builtin_popcount(mk);
        }
    }
#endif
    for (; e < m; e++) {
        int64_t k = in[e] >> CLS;
        if (k < K) out[k * cap + nb[k]++] = in[e] & ((1 << CLS) - 1);
    }
}

/* The taps of the m listed spikes of L, CNT each (packed table: one int32 a tap, (output
   offset << 12) | kernel offset, from taps + (entry & tmask), the channel entry >> shift). */
#define TAP_RUN(TYPE, VEC, L, M, CNT)                                                        \
    for (int64_t e = 0; e < (M); e++) {                                                      \
        const int64_t ch = (L)[e] >> shift;                                                  \
        const int32_t *t = taps + ((L)[e] & tmask);                                          \
        TYPE *dst = acc + (G == 1 ? 0 : ch / cg * cog);                                      \
        const TYPE *wc = w + ch * KK * cog;                                                  \
        for (int64_t j = 0; j < (CNT); j++) TAP_ADD(TYPE, VEC, t[j] >> 12, t[j] & 4095);     \
    }
/* The taps of the m listed spikes of L of regular class k: NR runs of RL taps at adjacent
   outputs, from the position's first output + dk[r], the channel's columns for them
   together in wk (one address a run, the rest constant offsets from it). */
#define REG_RUN(TYPE, VEC, L, M, NR, RL, dk)                                                 \
    for (int64_t e = 0; e < (M); e++) {                                                      \
        const int64_t ch = (L)[e] >> shift;                                                  \
        TYPE *dst0 = acc + (G == 1 ? 0 : ch / cg * cogc) + ((L)[e] & tmask);                 \
        const TYPE *wc = wk + ch * (NR) * (RL) * cogc;                                       \
        for (int64_t r = 0; r < (NR); r++) {                                                 \
            TYPE *dst = dst0 + (dk)[r];                                                      \
            for (int64_t i = 0; i < (RL); i++)                                               \
                TAP_ADD(TYPE, VEC, i * cogc, (r * (RL) + i) * cogc);                         \
        }                                                                                    \
    }
/* REG_RUN with the runs' shape constant (unrolled) and their offsets in locals (a vector
   store may alias any array it can reach) */
#define REG_CASE(TYPE, VEC, L, M, NR, RL)                                                    \
    case NR * 16 + RL: {                                                                     \
        int64_t dl_[NR];                                                                     \
        for (int r_ = 0; r_ < NR; r_++) dl_[r_] = dk[r_];                                    \
        REG_RUN(TYPE, VEC, L, M, NR, RL, dl_)                                                \
        break;                                                                               \
    }
/* The sums of one frame into acc [OH*OW, CO] (channels-last, zeroed first): each spike of
   x [C, H*W] adds its kernel columns to the outputs its taps reach.
   Classes: the spikes of cb channels listed, split by class into one list a class (a
   count that varies from spike to spike costs a branch miss a spike), then each class's
   run: a regular class's taps at the same offsets from each position's first output, the
   others' from the packed table; pair table: from taps[2*first[r]] to taps[2*first[r+1]],
   channel by channel. */
#define DEFINE_FRAME(NAME, TYPE, VEC)                                                        \
    static inline __attribute__((always_inline)) void NAME##_n(                             \
        const conv_t *a, const uint8_t *restrict x, TYPE *acc, int32_t *restrict list,       \
        const int NVC) {                                                                     \
        const int64_t HW = a->H * a->W, P = a->OH * a->OW, CO = a->CO;                       \
        const int64_t cog = a->CO / a->G, cg = a->C / a->G, KK = a->KH * a->KW;              \
        const int64_t nv = cog % 16 ? 0 : cog / 16;                                          \
        const int64_t cogc = NVC == 1 ? 16 : NVC == 2 ? 32 : cog; /* a constant if it can */ \
        const TYPE *w = (const TYPE *)a->w;                                                  \
        /* locals: the vector stores below may alias anything, so fields of *a would be      \
           read again after each */                                                          \
        const int32_t *first = a->first, *taps = a->taps, *code = a->code;                   \
        const int64_t C = a->C, K = a->classes, G = a->G, shift = a->shift, cb = a->cb;      \
        const int32_t tmask = (int32_t)((1u << shift) - 1);                                  \
        const int64_t cap = (cb * HW + 15) / 16 * 16 + 16;                                   \
        int64_t nb[MAX_CLASSES];                                                             \
        memset(acc, 0, sizeof(TYPE) * (size_t)(P * CO));                         \
        for (int64_t c0 = 0; c0 < C && K; c0 += cb) {                                        \
            for (int64_t k = 0; k < K; k++) nb[k] = 0;                                       \
            const int64_t n = (C - c0 < cb ? C - c0 : cb) * HW;                              \
            split_codes(list, list_codes(x + c0 * HW, n, code, (int32_t)(c0 << shift), list), \
                        K, list + cap, cap, nb);                                             \
            for (int64_t k = 0; k < K; k++) {                                                \
                const int64_t cnt = a->count[k], m = nb[k];                                  \
                const int32_t *Lk = list + cap * (k + 1);                                    \
                if (k >= a->regular) {                                                       \
                    TAP_RUN(TYPE, VEC, Lk, m, cnt)                                           \
                    continue;                                                                \
                }                                                                            \
                const int32_t *dk = a->rel + k * KK;                                         \
                const TYPE *wk = (const TYPE *)a->wr + a->wofs[k];                           \
                const int64_t nr = a->runs[k], rl = a->rlen[k];                               \
                switch (nr * 16 + rl) {                                                      \
                    REG_CASE(TYPE, VEC, Lk, m, 1, 1) REG_CASE(TYPE, VEC, Lk, m, 1, 2)        \
                    REG_CASE(TYPE, VEC, Lk, m, 1, 3) REG_CASE(TYPE, VEC, Lk, m, 2, 1)        \
                    REG_CASE(TYPE, VEC, Lk, m, 2, 2) REG_CASE(TYPE, VEC, Lk, m, 2, 3)        \
                    REG_CASE(TYPE, VEC, Lk, m, 3, 1) REG_CASE(TYPE, VEC, Lk, m, 3, 2)        \
                    REG_CASE(TYPE, VEC, Lk, m, 3, 3) REG_CASE(TYPE, VEC, Lk, m, 5, 5)        \
                    default: REG_RUN(TYPE, VEC, Lk, m, nr, rl, dk)                           \
                }                                                                            \
            }                                                                                \
        }                                                                                    \
        for (int64_t c = 0; c < C && !K; c++) {                                              \
            TYPE *dst = acc + (c / cg) * cog;                                                \
            const TYPE *wc = w + c * KK * cog;                                               \
            int64_t m = list_codes(x + c * HW, HW, code, 0, list);                           \
            for (int64_t e = 0; e < m; e++) {                                                \
                const int32_t *t = taps + 2 * first[list[e]];                                \
                const int32_t *te = taps + 2 * first[list[e] + 1];                           \
                for (; t < te; t += 2) TAP_ADD(TYPE, VEC, t[0], t[1]);                       \
            }                                                                                \
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
        int32_t *list = (int32_t *)(acc + CO * P);                               \
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

/* The tap table of a. Per source position r = y*W + x, its taps: the outputs it reaches, each
   with (offset of the output position in the channels-last accumulator, offset
   (ky*KW + kx) * C_out/G of the tap's kernel column in its channel's kernel).
   In classes, where there are at most MAX_CLASSES and the offsets fit: a position is
   regular where it has the taps of the first position of its class (y % SH, x % SW) with the
   most taps, at the same offsets from its first output (all but those near the borders): its
   code[r] is (class << CLS) | its first output's offset, the class's taps in rel and kof.
   The others (near the borders) are in classes by their number of taps, code[r] (class <<
   CLS) | the offset of their taps in taps, one int32 a tap, (output offset << 12) | kernel
   offset; positions without taps in the class after the last, dropped. The tap loop then
   runs the same count for every spike of a class, which the branch predictor follows, with
   no table lookups for the regular ones.
   Else pairs from taps[2*first[r]] to taps[2*first[r+1]], code[r] = r.
   Returns 0, or -1 when memory ran out. */
#define LIST_MAX 8192
static int tap_table(const int64_t *g, conv_t *a) {
    int64_t H = g[1], W = g[2], CO = g[3], OH = g[4], OW = g[5], KH = g[6], KW = g[7];
    int64_t SH = g[8], SW = g[9], PH = g[10], PW = g[11], DH = g[12], DW = g[13];
    int64_t HW = H * W, P = OH * OW, cog = CO / g[14], KK = KH * KW;
    int32_t *first = malloc(sizeof(int32_t) * (size_t)(HW + 1));
    int32_t *taps = malloc(sizeof(int32_t) * 2 * (size_t)(HW * KK + 1));
    int32_t *code = malloc(sizeof(int32_t) * (size_t)HW);
    int32_t *cls = malloc(sizeof(int32_t) * (size_t)HW);
    int32_t *rel = malloc(sizeof(int32_t) * (size_t)(16 * KK));
    int32_t *kof = malloc(sizeof(int32_t) * (size_t)(16 * KK));
    int32_t *packed = NULL;
    if (!first || !taps || !code || !cls || !rel || !kof) goto oom;
    /* the output column of each (x, kx), or -1 (the divisions out of the loop below: they
       were most of this function's time, ~2% of the workload's first layer) */
    int32_t *col = malloc(sizeof(int32_t) * (size_t)(W * KW));
    if (!col) goto oom;
    for (int64_t ix = 0; ix < W; ix++)
        for (int64_t kx = 0; kx < KW; kx++) {
            int64_t tx = ix + PW - kx * DW;
            col[ix * KW + kx] = tx < 0 || tx % SW || tx / SW >= OW ? -1 : (int32_t)(tx / SW);
        }
    int64_t m = 0;
    for (int64_t iy = 0; iy < H; iy++)
        for (int64_t ix = 0; ix < W; ix++) {
            first[iy * W + ix] = (int32_t)m;
            for (int64_t ky = 0; ky < KH; ky++) {
                int64_t ty = iy + PH - ky * DH;
                if (ty < 0 || ty % SH || ty / SH >= OH) continue;
                for (int64_t kx = 0; kx < KW; kx++) {
                    int32_t tx = col[ix * KW + kx];
                    if (tx < 0) continue;
                    taps[2 * m] = (int32_t)(((ty / SH) * OW + tx) * CO);
                    taps[2 * m + 1] = (int32_t)((ky * KW + kx) * cog);
                    m++;
                }
            }
        }
    first[HW] = (int32_t)m;
    free(col);
    /* regular classes: the first position of each with the most taps is its pattern */
    int64_t K = SH * SW <= 16 ? SH * SW : 1, canon[16], most[16] = {0};
#define NT(r) ((int64_t)first[(r) + 1] - first[r])
#define T(r, j) (taps + 2 * ((int64_t)first[r] + (j)))
    for (int64_t r = 0; r < HW; r++) {
        int64_t k = K == 1 ? 0 : (r / W % SH) * SW + r % W % SW;
        cls[r] = (int32_t)k;
        if (NT(r) > most[k]) most[k] = NT(r), canon[k] = r;
    }
    int64_t byn[64], ncls = K, tsize = 0;  /* the class of the irregular ones by count */
    for (int64_t n = 0; n < 64; n++) byn[n] = -1;
    for (int64_t r = 0; r < HW; r++) {
        int64_t k = cls[r], n = NT(r), ok = n > 0 && n == most[k];
        for (int64_t j = 0; ok && j < n; j++)
            ok = T(r, j)[1] == T(canon[k], j)[1] &&
                 T(r, j)[0] - T(r, 0)[0] == T(canon[k], j)[0] - T(canon[k], 0)[0];
        if (ok || !n) continue;
        if (n >= 64) { ncls = MAX_CLASSES + 1; break; }
        if (byn[n] < 0) byn[n] = ncls++;
        cls[r] = (int32_t)-1 - (int32_t)byn[n];  /* marked: irregular */
        tsize += n;
    }
    int64_t shift = 1;
    while ((int64_t)1 << shift <= (tsize > P * CO ? tsize : P * CO)) shift++;
    a->lwords = (HW + 15) / 16 * 16 + 16;
    if (ncls > MAX_CLASSES - 1 || P * CO >= (1 << 19) || KK * cog >= (1 << 12) ||
        (g[0] << shift) >= ((int64_t)1 << CLS)) {
        for (int64_t r = 0; r < HW; r++) code[r] = (int32_t)r;
        a->classes = 0, a->regular = 0, a->shift = 0, a->cb = 0;
        a->first = first, a->taps = taps, a->code = code, a->rel = rel, a->kof = kof;
        free(cls);
        return 0;
    }
    packed = malloc(sizeof(int32_t) * (size_t)(tsize + 1));
    if (!packed) goto oom;
    int64_t lo[16];  /* the first output of each regular class's taps, from its first tap's */
    for (int64_t k = 0; k < K; k++) {
        /* the taps in the order of their outputs (insertion sort: at most KH * KW) */
        int32_t *o = rel + k * KK, *ko = kof + k * KK;
        for (int64_t j = 0; j < most[k]; j++) {
            int64_t i = j;
            for (; i > 0 && o[i - 1] > T(canon[k], j)[0]; i--) o[i] = o[i - 1], ko[i] = ko[i - 1];
            o[i] = T(canon[k], j)[0], ko[i] = T(canon[k], j)[1];
        }
        lo[k] = most[k] ? o[0] - T(canon[k], 0)[0] : 0;
        /* runs of adjacent outputs (all of a group's outputs: one group), all alike? */
        int64_t nr = 0, len = 0, rl = 0;
        for (int64_t j = 0; j <= most[k]; j++) {
            if (j && j < most[k] && g[14] == 1 && o[j] - o[j - 1] == CO) { len++; continue; }
            if (len) rl = !nr ? len : rl == len ? rl : 0, nr++;  /* a run ends */
            len = 1;
        }
        a->count[k] = most[k];
        a->runs[k] = rl ? nr : most[k], a->rlen[k] = rl ? rl : 1;
        /* rel: output offsets from the first, at the start of each run */
        const int64_t base = most[k] ? o[0] : 0;
        for (int64_t r = 0; r < a->runs[k]; r++) o[r] = o[r * a->rlen[k]] - (int32_t)base;
    }
    for (int64_t n = 0; n < 64; n++)
        if (byn[n] >= 0) a->count[byn[n]] = n;
    int64_t off = 0;
    for (int64_t r = 0; r < HW; r++) {
        int64_t n = NT(r);
        if (!n) code[r] = (int32_t)(ncls << CLS);
        else if (cls[r] >= 0) code[r] = (int32_t)(cls[r] << CLS | (T(r, 0)[0] + lo[cls[r]]));
        else {
            code[r] = (int32_t)((-1 - cls[r]) << CLS | off);
            for (int64_t j = 0; j < n; j++) packed[off++] = T(r, j)[0] << 12 | T(r, j)[1];
        }
    }
#undef NT
#undef T
    free(taps);
    free(cls);
    /* the channels listed together (up to LIST_MAX positions): their codes, channel cc's
       plus cc << shift */
    int64_t cb = LIST_MAX / HW > 1 ? LIST_MAX / HW : 1;
    cb = cb < g[0] ? cb : g[0];
    int32_t *codes = malloc(sizeof(int32_t) * (size_t)(cb * HW));
    if (!codes) { taps = NULL, cls = NULL; goto oom; }
    a->first = first, a->taps = packed, a->code = code, a->rel = rel, a->kof = kof;
    for (int64_t cc = 0; cc < cb; cc++)
        for (int64_t r = 0; r < HW; r++)
            codes[cc * HW + r] = code[r] + (code[r] >> CLS < ncls ? (int32_t)(cc << shift) : 0);
    free(code);
    a->code = codes;
    a->classes = ncls, a->regular = K, a->shift = shift, a->cb = cb;
    a->lwords = ((cb * HW + 15) / 16 * 16 + 16) * (1 + ncls);
    return 0;
oom:
    free(first), free(taps), free(code), free(cls), free(rel), free(kof), free(packed);
    return -1;
}

/* a->wr from the kernel a->w (elements of `size` bytes): each regular class's columns, channel
   by channel, in the order of the taps' outputs. Returns 0, or -1 when memory ran out. */
static int class_kernel(conv_t *a, size_t size) {
    const int64_t KK = a->KH * a->KW, cog = a->CO / a->G, C = a->C;
    /* on cache lines: a vector load of a column split over two lines costs two */
    a->wr = aligned_alloc(64, (size * (size_t)(C * KK * cog + 1) + 63) / 64 * 64);
    if (!a->wr) return -1;
    int64_t at = 0;
    for (int64_t k = 0; k < a->regular; k++) {
        a->wofs[k] = at;
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t j = 0; j < a->count[k]; j++, at += cog)
                memcpy((char *)a->wr + size * (size_t)at,
                       (const char *)a->w + size * (size_t)(ch * KK * cog + a->kof[k * KK + j]),
                       size * (size_t)cog);
    }
    return 0;
}

static void free_taps(conv_t *a) {
    free(a->wr);
    free((void *)a->first);
    free((void *)a->taps);
    free((void *)a->code);
    free((void *)a->rel);
    free((void *)a->kof);
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
    if (a.classes && class_kernel(&a, 4)) { free_taps(&a); return -1; }
    a.N = N, a.chunk = N / (8 * n_threads) > 1 ? N / (8 * n_threads) : 1;
    int rc = parallel_for(events_item, &a, (N + a.chunk - 1) / a.chunk, n_threads,
                          4 * (size_t)(a.OH * a.OW * a.CO + a.lwords));
    free_taps(&a);
    return rc;
}

/* ------------------------------------------------------------------ sums and neurons fused */

typedef struct {
    conv_t a;         /* the geometry, kernel and tap table (x, out, N unused) */
    int64_t T, B;
    int64_t block;    /* neurons per update call (see snn_conv_layer) */
    int per_channel;  /* the parameters are per channel (block > 0) */
    int64_t gs;       /* samples a work item (see snn_conv_layer) */
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

/* One item = the samples b0..b1 (L->gs of them), all T steps, step by step and sample by
   sample within a step (the frames they read and the spikes they write then follow each
   other in memory, [T, B, ...], which the prefetchers follow: ~5% of the workload's run
   where other work left the caches cold, against one sample's T steps at a time): per step
   and sample its frame's sums (x), the delayed reset's inputs from its spikes one and two
   steps ago (a ring of three channels-last frames), the neuron update, the spikes scattered
   out. Scratch: shared by the item's samples (the frame's sums, the spike lists, the int16
   sums), then each sample's own (V, I, theta, refractory counters, its ring). */
static int64_t layer_shared(const conv_t *a) {
    const int64_t N = a->OH * a->OW * a->CO;
    return (4 * N + 4 * a->lwords + 2 * N + 63) / 64 * 64;
}
static int64_t layer_own(int64_t N) { return (16 * N + 3 * N + 63) / 64 * 64; }
#define GROUP_BYTES (1 << 21)

/* The float plain LIF's update of a frame with per-channel parameters: channel vector by
   channel vector over all positions (lif_rows_f32, its parameters in registers, the delayed
   reset's inputs in the same pass); 0 where it does not apply (then the block-wise update). */
static int rows_f32(const clayer_t *L, const neuron_t *p, const float *x, float *V, float *I,
                    const uint8_t *s1, const uint8_t *s2, uint8_t *s0) {
#if BB_FUSED
    if (!L->per_channel || !PLAIN_LIF(p)) return 0;
    const int64_t CO = L->a.CO, P = L->a.OH * L->a.OW;
    for (int64_t c = 0; c < CO; c += VL)
        lif_rows_f32(p, c, CO - c < VL ? (int)(CO - c) : VL, P, x + c, CO, V + c, CO, s0 + c,
                     s1 ? s1 + c : NULL, s2 ? s2 + c : NULL, NULL, NULL, I ? I + c : NULL,
                     NULL, CO);
    return 1;
#else
    (void)L, (void)p, (void)x, (void)V, (void)I, (void)s1, (void)s2, (void)s0;
    return 0;
#endif
}
#define NO_ROWS(...) 0 /* the integer layers: their fused step is NARROW_STEP */

#define DEFINE_LAYER(NAME, ST, FRAME, DELAYED, UPD, FUSED, ROWS)                             \
    static void NAME(void *ctx, int64_t item, void *scratch) {                               \
        const clayer_t *L = (const clayer_t *)ctx;                                           \
        const conv_t *a = &L->a;                                                             \
        const neuron_t *p = &L->p;                                                           \
        const int64_t P = a->OH * a->OW, CO = a->CO, N = P * CO, S = a->C * a->H * a->W;     \
        const int64_t b0 = item * L->gs, b1 = b0 + L->gs < L->B ? b0 + L->gs : L->B;         \
        ST *x = (ST *)scratch;                                                               \
        int32_t *list = (int32_t *)(x + N);                                                  \
        /* on a cache line (the scratch is): a 32-output int16 add then never splits */      \
        int16_t *acc16 = (int16_t *)(list + a->lwords);                                      \
        uint8_t *own = (uint8_t *)scratch + layer_shared(a);                                 \
        (void)acc16;                                                                         \
        for (int64_t b = b0; b < b1; b++) {                                                  \
            ST *V = (ST *)(void *)(own + (b - b0) * layer_own(N));                           \
            ST *I = V + N, *TH = I + N;                                                      \
            int32_t *R = (int32_t *)(TH + N);                                                \
            for (int64_t c = 0; c < N; c++) {                                                \
                V[c] = ((const ST *)p->v_init)[c];                                           \
                I[c] = TH[c] = 0;                                                            \
                R[c] = 0;                                                                    \
            }                                                                                \
        }                                                                                    \
        const int fused = FUSED && NARROW_LIF(p);                                            \
        /* the plain LIF's i is read only to record it */                                    \
        const int keep_i = L->rec[1] || !PLAIN_LIF(p);                                       \
        for (int64_t t = 0; t < L->T; t++)                                                   \
            for (int64_t b = b0; b < b1; b++) {                                              \
                ST *V = (ST *)(void *)(own + (b - b0) * layer_own(N));                       \
                ST *I = V + N, *TH = I + N;                                                  \
                int32_t *R = (int32_t *)(TH + N);                                            \
                uint8_t *ring = (uint8_t *)(R + N);                                          \
                int64_t s = t * L->B + b;                                                    \
                uint8_t *s0 = ring + t % 3 * N;                                              \
                const uint8_t *s1 = t >= 1 ? ring + (t + 2) % 3 * N : NULL;                  \
                const uint8_t *s2 = t >= 2 ? ring + (t + 1) % 3 * N : NULL;                  \
                if (fused) {                                                                 \
                    NARROW_STEP(FUSED, a, L->x + s * S, (int32_t *)(void *)x, list, acc16,   \
                                N, L->block, p, s1, s2, (int32_t *)(void *)V,                \
                                L->rec[1] ? (int32_t *)(void *)I : NULL, s0);                \
                } else {                                                                     \
                    FRAME(a, L->x + s * S, x, list, acc16);                                  \
                    if (!ROWS(L, p, x, V, keep_i ? I : NULL, s1, s2, s0))                    \
                    for (int64_t c = 0; c < N; c += L->block) {                              \
                        int64_t n = N - c < L->block ? N - c : L->block;                     \
                        DELAYED(n, p, 0, s1 ? s1 + c : NULL, s2 ? s2 + c : NULL, x + c);     \
                        UPD(n, p, 0, x + c, V + c, keep_i ? I + c : NULL, TH + c, R + c,     \
                            s0 + c);                                                         \
                    }                                                                        \
                }                                                                            \
                scatter_spikes(s0, P, CO, L->spikes + s * N);                                \
                const ST *st[3] = {V, I, TH};                                                \
                for (int k = 0; k < 3; k++)                                                  \
                    if (L->rec[k])                                                           \
                        store_state((const uint32_t *)st[k], P, CO,                          \
                                    (uint32_t *)L->rec[k] + s * N);                          \
            }                                                                                \
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

/* A narrow plain LIF's step (update_i32_narrow): the frame's sums, int32 (kind 1) or int16
   read as they are (kind 2: no widening pass), then the delayed reset and the update in one
   pass a block. */
#if HAVE_NARROW
static inline __attribute__((always_inline)) void narrow_step(
    int kind, const conv_t *a, const uint8_t *xs, int32_t *x, int32_t *list, int16_t *acc16,
    int64_t N, int64_t block, const neuron_t *p, const uint8_t *s1, const uint8_t *s2,
    int32_t *V, int32_t *I, uint8_t *s0) {
    if (kind == 2)
        frame_i16(a, xs, acc16, list);
    else
        frame_i32(a, xs, x, list);
    for (int64_t c = 0; c < N; c += block) {
        int64_t n = N - c < block ? N - c : block;
        update_i32_narrow(n, p, 0, kind == 2 ? NULL : x + c, kind == 2 ? acc16 + c : NULL,
                          s1 ? s1 + c : NULL, s2 ? s2 + c : NULL, V + c, I ? I + c : NULL,
                          s0 + c);
    }
}
#define NARROW_STEP(KIND, ...) narrow_step(KIND, __VA_ARGS__)
#else
#define NARROW_LIF(p) 0
#define NARROW_STEP(...) ((void)0)
#endif

DEFINE_LAYER(layer_f32, float, sums_f32, delayed_f32, update_f32, 0, rows_f32)
DEFINE_LAYER(layer_i32, int32_t, sums_i32, delayed_i32, update_i32, 1, NO_ROWS)
DEFINE_LAYER(layer_i16, int32_t, sums_i16, delayed_i32, update_i32, 2, NO_ROWS)

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
    if (L.a.classes && class_kernel(&L.a, kind == 2 ? 2 : 4)) { free_taps(&L.a); return -1; }
    L.T = T, L.B = B, L.x = x, L.p = *p, L.spikes = spikes;
    L.block = block > 0 && block < geom[3] * geom[4] * geom[5] ? block : geom[3] * geom[4] * geom[5];
    L.per_channel = block > 0;
    L.rec[0] = rec_v, L.rec[1] = rec_i, L.rec[2] = rec_theta;
    int64_t N = geom[3] * geom[4] * geom[5];
    void (*item)(void *, int64_t, void *) = kind == 0 ? layer_f32 : kind == 1 ? layer_i32 : layer_i16;
    /* all samples a work item on one thread, else half a thread's share (balance), as many
       as keep their states within GROUP_BYTES (in L2) */
    L.gs = n_threads <= 1 ? B : (B + 2 * n_threads - 1) / (2 * n_threads);
    int64_t fit = GROUP_BYTES / layer_own(N);
    L.gs = L.gs < fit ? L.gs : fit > 1 ? fit : 1;
    int rc = parallel_for(item, &L, (B + L.gs - 1) / L.gs, n_threads,
                          (size_t)(layer_shared(&L.a) + L.gs * layer_own(N)));
    free_taps(&L.a);
    return rc;
}
