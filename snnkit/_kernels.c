/* CPU fast path of the simulator (snnkit/kernels.py builds and loads this file, which
   includes _kernels_amx.c and _kernels_step.c).

   snn_layer runs one neuron population over all T steps, its inputs' spikes all known:

   1. index lists: for every sample (t, b), the source neurons that spike, as offsets of their
      weight rows (inputs are binary spikes, ~10% dense, so summing the rows of the active
      sources is ~10x less work than a dense matrix product);
   2. for every block of output columns (NV vectors, held in registers) and every batch
      element: for t = 0..T-1, sum the active weight rows, add the optional dense input, and
      run the neuron update of snnkit/neurons.py on the block (its state stays in L1).

   The block loop is outermost so that a block's slice of the weights stays in L2 while all
   samples stream past it. Float layers with 8 or more batch elements go further
   (item_f32_bb): a group of samples at a time, a slab of up to 4 vectors of columns at a
   time, a piece of its sources at a time in L1 and, for the LIF, the neuron update of the
   slab's vectors right after their sums. Integer sums are exact whatever the order, so the
   fixed-point path is bit-exact with the torch integer path; float sums differ from a BLAS
   product only in fp32 summation order. Build with -ffp-contract=off: the neuron update must
   round each product and sum as torch does (no fused multiply-add).

   The neuron update is written once (DEF_UPDATE, DEF_DELAYED) for both arithmetics, step for
   step as in neurons.py / docs/fixed-point.md "One time step" items 2-8.

   On CPUs with AMX, 8-bit layers with dense-enough inputs replace step 1-2's row sums by
   tile-unit matrix products (_kernels_amx.c): exact int32 sums, the same integers; float
   layers (snn_layer_bf16) by bf16 tile products of each weight's exact bf16 parts: float32
   sums of the exact weights, in another order.
   snn_group (_kernels_step.c) runs populations that feed each other, and plastic
   projections, step by step. */

#define _GNU_SOURCE /* syscall() */
#include <pthread.h>
#include <sched.h>
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__linux__)
#define HAVE_AMX 1
#if defined(__AMX_BF16__)
#define HAVE_AMX_BF16 1
#endif
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__AVX512F__)
#define VBYTES 64
#define NV 16 /* 16 of the 32 zmm registers hold the accumulators */
#else
#define VBYTES 32
#define NV 8
#endif
#define VL (VBYTES / 4) /* 32-bit lanes per vector */
#define BLOCK (NV * VL) /* output columns per block */

typedef float vf __attribute__((vector_size(VBYTES), aligned(4), may_alias));
typedef int32_t vi __attribute__((vector_size(VBYTES), aligned(4), may_alias));
typedef int16_t vh __attribute__((vector_size(VBYTES / 2), aligned(2), may_alias));
typedef int8_t vb __attribute__((vector_size(VBYTES / 4), aligned(1), may_alias));

/* ------------------------------------------------------------------ index lists */

/* Number of nonzero bytes of x[0..n) (each byte is 0 or 1). */
static int64_t count_spikes(const uint8_t *x, int64_t n) {
    int64_t c = 0, j = 0;
#if defined(__AVX512BW__)
    for (; j + 64 <= n; j += 64) /* one mask a 64 bytes: memory-bound, where the words were not */
        c += __builtin_popcountll(_mm512_test_epi8_mask(
            _mm512_loadu_si512((const void *)(x + j)), _mm512_set1_epi8((char)0xff)));
#endif
    for (; j + 8 <= n; j += 8) {
        uint64_t w;
        memcpy(&w, x + j, 8);
        c += __builtin_popcountll(w);
    }
    for (; j < n; j++) c += x[j] != 0;
    return c;
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VBMI2__)
static const uint8_t BYTE_IOTA[64] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                      13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
                                      26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38,
                                      39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
                                      52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63};

/* out[0 .. k) = base + b's bytes 0 .. k - 1 (k <= 64 positions, compressed from BYTE_IOTA)
   widened and times the stride: the first 16 always (a spare entry at worst), the rest
   rarely at sparse inputs, whole stores up to the one that holds the last entry */
#define LIST_PART(Q)                                                                      \
    _mm512_add_epi32(base, _mm512_mullo_epi32(                                            \
                               _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32(b, Q)), vstride))
static inline __attribute__((always_inline)) void store_byte_list(int32_t *out, __m512i b, int k,
                                                                  __m512i base, __m512i vstride) {
    _mm512_storeu_si512((void *)out, LIST_PART(0));
    if (k > 16) {
        _mm512_storeu_si512((void *)(out + 16), LIST_PART(1));
        if (k > 32) {
            _mm512_storeu_si512((void *)(out + 32), LIST_PART(2));
            if (k > 48) _mm512_storeu_si512((void *)(out + 48), LIST_PART(3));
        }
    }
}
#undef LIST_PART
#endif

/* Write row * stride for every spiking source row; returns the count. Branch-free: a loop
   over set bits mispredicts once per word, and that was most of this pass's time. spare: the
   15 entries after the list may be overwritten (then 64 sources a load, whole-vector stores:
   ~25% faster than masked ones). */
static inline __attribute__((always_inline)) int64_t list_spikes_any(
    const uint8_t *x, int64_t n, int64_t stride, int32_t *out, int spare, int sparse) {
    int64_t c = 0, j = 0;
#if defined(__AVX512F__) && defined(__AVX512BW__)
    const __m512i step = _mm512_set1_epi32((int32_t)(16 * stride));
    __m512i offs = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int32_t)stride)); /* (j + lane) * stride */
#if defined(__AVX512VBMI2__)
    /* the positions of the 64 bytes' spikes compressed as bytes in one go, then widened and
       scaled 16 at a time: 4 32-bit compressions a 64 bytes (port 5's 2 uops each) were
       most of this loop's time */
    const __m512i pos = _mm512_loadu_si512((const void *)BYTE_IOTA);
    const __m512i vstride = _mm512_set1_epi32((int32_t)stride);
    for (; sparse && spare && j + 64 <= n; j += 64) {
        const uint64_t m = _mm512_test_epi8_mask(_mm512_loadu_si512((const void *)(x + j)),
                                                 _mm512_set1_epi8((char)0xff));
        const int k = __builtin_popcountll(m);
        const __m512i b = _mm512_maskz_compress_epi8(m, pos);
        const __m512i base = _mm512_set1_epi32((int32_t)(j * stride));
        store_byte_list(out + c, b, k, base, vstride);
        c += k;
    }
    offs = _mm512_add_epi32(offs, _mm512_set1_epi32((int32_t)(j * stride)));
#else
    (void)sparse;
#endif
    for (; spare && j + 64 <= n; j += 64) {
        const uint64_t m = _mm512_test_epi8_mask(_mm512_loadu_si512((const void *)(x + j)),
                                                 _mm512_set1_epi8((char)0xff));
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++) {
            const __mmask16 mq = (__mmask16)(m >> (16 * q));
            _mm512_storeu_si512((void *)(out + c), _mm512_maskz_compress_epi32(mq, offs));
            c += __builtin_popcount(mq);
            offs = _mm512_add_epi32(offs, step);
        }
    }
    for (; j + 16 <= n; j += 16, offs = _mm512_add_epi32(offs, step)) {
        __mmask16 m = _mm_test_epi8_mask(_mm_loadu_si128((const __m128i *)(x + j)),
                                         _mm_set1_epi8((char)0xff));
        int k = __builtin_popcount(m); /* masked store: nothing written past the list */
        _mm512_mask_storeu_epi32(out + c, (__mmask16)((1u << k) - 1),
                                 _mm512_maskz_compress_epi32(m, offs));
        c += k;
    }
#endif
    for (; j < n; j++)
        if (x[j]) out[c++] = (int32_t)(j * stride);
    return c;
}

static int64_t list_spikes(const uint8_t *x, int64_t n, int64_t stride, int32_t *out) {
    return list_spikes_any(x, n, stride, out, 0, 0);
}

/* list_spikes, where the 15 entries after the list may be overwritten */
static int64_t list_spikes_spare(const uint8_t *x, int64_t n, int64_t stride, int32_t *out) {
    return list_spikes_any(x, n, stride, out, 1, 0);
}

/* list_spikes_spare for sparse inputs (up to ~1 spike in 5 sources: the byte compression
   then needs its one 16-entry store nearly always; denser, the branches to the next ones
   mispredict and the 32-bit compressions are as fast) */
static int64_t list_spikes_sparse(const uint8_t *x, int64_t n, int64_t stride, int32_t *out) {
    return list_spikes_any(x, n, stride, out, 1, 1);
}

/* ------------------------------------------------------------------ threads */

/* A pool for one parallel loop. The caller works too and returns as soon as every item is
   done, without waiting for helper threads that never got a core: on a loaded machine a
   joined thread can keep the caller waiting for a whole time slice after the work is over.
   So helpers are detached and the last one out (caller included) frees the pool; a helper
   that starts late finds no item left and touches nothing but the pool. */
typedef struct {
    void (*fn)(void *ctx, int64_t item, void *scratch);
    void *ctx;
    int64_t n_items;
    int64_t next; /* next unclaimed item (atomic) */
    int64_t done; /* finished items (atomic) */
    int refs;     /* threads still referencing the pool, caller included (atomic) */
    int failed;
    size_t scratch_bytes;
} pool_t;

static void pool_release(pool_t *p) {
    if (__atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) == 0) free(p);
}

/* A thread's scratch of `bytes` (64-byte aligned), or NULL; *failed set when memory ran
   out. */
static void *scratch_alloc(size_t bytes, int *failed) {
    void *s = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!s) __atomic_store_n(failed, 1, __ATOMIC_RELAXED);
    return s;
}

static void pool_work(pool_t *p) {
    void *scratch = NULL;
    if (p->scratch_bytes && __atomic_load_n(&p->next, __ATOMIC_RELAXED) < p->n_items)
        scratch = scratch_alloc(p->scratch_bytes, &p->failed);
    for (;;) {
        int64_t k = __atomic_fetch_add(&p->next, 1, __ATOMIC_ACQ_REL);
        if (k >= p->n_items) break;
        if (scratch || !p->scratch_bytes) p->fn(p->ctx, k, scratch);
        __atomic_add_fetch(&p->done, 1, __ATOMIC_ACQ_REL);
    }
    free(scratch);
}

static void *pool_helper(void *arg) {
    pool_t *p = (pool_t *)arg;
    pool_work(p);
    pool_release(p);
    return NULL;
}

/* The host's OpenMP runtime, when it has one (torch's libgomp or libiomp; snn_use_openmp):
   its GOMP_parallel runs a function on its thread team, caller included, and returns when
   all are done. Between torch's parallel ops its workers spin for milliseconds on the cores,
   so threads of our own would share those cores with them (a training pass on 2 threads took
   the time of 1, its CPU time doubled); on the team they are the same threads, already
   awake. */
typedef void (*gomp_parallel_t)(void (*)(void *), void *, unsigned, unsigned);
typedef int (*omp_thread_num_t)(void);
static gomp_parallel_t gomp_parallel = NULL;
static omp_thread_num_t omp_thread_num = NULL, omp_num_threads = NULL;

/* f: the runtime's GOMP_parallel, or NULL for threads of our own; id, num: its
   omp_get_thread_num and omp_get_num_threads */
void snn_use_openmp(void *f, void *id, void *num) {
    gomp_parallel = (gomp_parallel_t)f;
    omp_thread_num = f ? (omp_thread_num_t)id : NULL;
    omp_num_threads = f ? (omp_thread_num_t)num : NULL;
}

/* On the team each thread takes the items of its own share first (thread k of n: items from
   k n_items / n on, in order), then helps the others at the end of theirs. The loops split
   the columns of a population the same way in every pass (forward, backward, weight
   gradient), so a thread finds in its own core's cache what it wrote in the pass before; on
   2 cores, dynamic claiming sent each half of the data to the other core about half the
   time. */
#define TEAM_MAX 64
typedef struct {
    int64_t next, end;
    char pad[64 - 2 * sizeof(int64_t)];
} share_t;
typedef struct {
    pool_t pool;
    int n;
    share_t share[TEAM_MAX];
} team_t;

static void team_work(void *arg) {
    team_t *tm = (team_t *)arg;
    pool_t *p = &tm->pool;
    const int me = omp_thread_num ? omp_thread_num() % tm->n : 0;
    void *scratch = p->scratch_bytes ? scratch_alloc(p->scratch_bytes, &p->failed) : NULL;
    for (int u = 0; u < tm->n; u++) {
        share_t *sh = &tm->share[(me + u) % tm->n];
        for (;;) {
            int64_t k = __atomic_fetch_add(&sh->next, 1, __ATOMIC_ACQ_REL);
            if (k >= sh->end) break;
            if (scratch || !p->scratch_bytes) p->fn(p->ctx, k, scratch);
        }
    }
    free(scratch);
}

/* Run fn(ctx, item, scratch) for item = 0..n_items-1 on up to n_threads threads (dynamic
   scheduling; threads of our own claim the items in increasing order, the OpenMP team's
   each its own share first, see team_work). Returns 0, or -1 when memory ran out. */
static int parallel_for(void (*fn)(void *, int64_t, void *), void *ctx, int64_t n_items,
                        int n_threads, size_t scratch_bytes) {
    if (n_threads > n_items) n_threads = (int)(n_items > 0 ? n_items : 1);
    if (gomp_parallel && n_threads > 1) {
        if (n_threads > TEAM_MAX) n_threads = TEAM_MAX;
        team_t team = {{fn, ctx, n_items, 0, 0, 1, 0, scratch_bytes}, n_threads, {{0}}};
        for (int k = 0; k < n_threads; k++)
            team.share[k] = (share_t){n_items * k / n_threads, n_items * (k + 1) / n_threads, {0}};
        gomp_parallel(team_work, &team, (unsigned)n_threads, 0);
        return team.pool.failed ? -1 : 0;
    }
    pool_t *p = calloc(1, sizeof(pool_t));
    if (!p) return -1;
    *p = (pool_t){fn, ctx, n_items, 0, 0, 1, 0, scratch_bytes};
    for (int k = 1; k < n_threads; k++) {
        pthread_t th;
        __atomic_add_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
        if (pthread_create(&th, NULL, pool_helper, p) == 0)
            pthread_detach(th);
        else
            __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL);
    }
    pool_work(p);
    while (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE) < n_items) /* items still running */
        sched_yield();
    int failed = __atomic_load_n(&p->failed, __ATOMIC_ACQUIRE);
    pool_release(p);
    return failed ? -1 : 0;
}

/* ------------------------------------------------------------------ spike lists, in parallel */

/* Each sample's list of its spiking sources (x: [n_samples, S] bytes), each entry source *
   stride. With pieces > 1 (P) the offsets also say where each piece of `piece` sources
   starts in the list: offsets[s P + p] is where sample s's sources from p * piece on start
   (offsets[(s + 1) P] its list's end); the list itself is the same. */
typedef struct {
    const uint8_t *x;
    int64_t n_samples, S, stride;
    int64_t *offsets; /* [n_samples P + 1] */
    int32_t *idx;
    int64_t chunk;         /* samples an item */
    int64_t pieces, piece; /* P (0: 1) */
    uint64_t *bits; /* [n_samples, ceil(S / 64)] or NULL: the counting pass leaves each 64
                       sources' spikes there as a mask, and the listing pass reads those
                       (1/8 of the bytes: from cache, where x came from memory) */
} lists_t;

#if defined(__AVX512BW__) && defined(__AVX512VBMI2__)
#define LIST_BITS 1
#else
#define LIST_BITS 0
#endif

/* out[p] = the number of nonzero bytes among x[p * piece ...] (p < P, the last piece to n);
   bits (LIST_BITS builds, or NULL): each 64 bytes' mask of nonzero bytes */
static void count_pieces(const uint8_t *x, int64_t n, int64_t piece, int64_t P, int64_t *out,
                         uint64_t *bits) {
#if defined(__AVX512BW__)
    /* one pass over the row, each boundary's prefix count taken from its 64 bytes' mask */
    int64_t c = 0, prev = 0, next = piece;
    int p = 0;
    for (int64_t j = 0; j < n; j += 64) {
        const __mmask64 in = n - j >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << (n - j)) - 1;
        const uint64_t m = _mm512_test_epi8_mask(
            _mm512_maskz_loadu_epi8(in, (const void *)(x + j)), _mm512_set1_epi8((char)0xff));
        if (bits) bits[j / 64] = m;
        for (; p < P - 1 && next < j + 64; p++, next += piece) {
            const int64_t below = c + __builtin_popcountll(m & (((uint64_t)1 << (next - j)) - 1));
            out[p] = below - prev;
            prev = below;
        }
        c += __builtin_popcountll(m);
    }
    out[P - 1] = c - prev;
#else
    (void)bits;
    for (int64_t p = 0; p < P; p++)
        out[p] = count_spikes(x + p * piece, n - p * piece < piece ? n - p * piece : piece);
#endif
}

#if LIST_BITS
/* list_spikes from the masks bits of x's 64-byte blocks (count_pieces); spare, sparse: as
   list_spikes_spare, list_spikes_sparse (not spare: masked stores, nothing past the list) */
static int64_t list_bits(const uint64_t *bits, int64_t n, int64_t stride, int32_t *out,
                         int spare, int sparse) {
    const __m512i pos = _mm512_loadu_si512((const void *)BYTE_IOTA);
    const __m512i vstride = _mm512_set1_epi32((int32_t)stride);
    const __m512i step = _mm512_set1_epi32((int32_t)(16 * stride));
    __m512i offs = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), vstride);
    int64_t c = 0;
    const __m512i step64 = _mm512_slli_epi32(step, 2);
    for (int64_t j = 0; j < n; j += 64, offs = _mm512_add_epi32(offs, step64)) {
        const uint64_t m = bits[j / 64];
        const int k = __builtin_popcountll(m);
        if (spare && sparse) { /* as list_spikes_sparse */
            const __m512i b = _mm512_maskz_compress_epi8(m, pos);
            const __m512i base = _mm512_set1_epi32((int32_t)(j * stride));
            store_byte_list(out + c, b, k, base, vstride);
            c += k;
            continue;
        }
        __m512i o = offs;
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++, o = _mm512_add_epi32(o, step)) {
            const __mmask16 mq = (__mmask16)(m >> (16 * q));
            const int kq = __builtin_popcount(mq);
            if (spare)
                _mm512_storeu_si512((void *)(out + c), _mm512_maskz_compress_epi32(mq, o));
            else
                _mm512_mask_storeu_epi32(out + c, (__mmask16)((1u << kq) - 1),
                                         _mm512_maskz_compress_epi32(mq, o));
            c += kq;
        }
    }
    return c;
}
#endif

static void count_item(void *c, int64_t item, void *scratch) {
    (void)scratch;
    lists_t *L = (lists_t *)c;
    const int64_t P = L->pieces > 1 ? L->pieces : 1;
    int64_t s0 = item * L->chunk, s1 = s0 + L->chunk < L->n_samples ? s0 + L->chunk : L->n_samples;
    const int64_t nw = (L->S + 63) / 64;
    for (int64_t s = s0; s < s1; s++)
        if (P == 1 && !L->bits)
            L->offsets[s + 1] = count_spikes(L->x + s * L->S, L->S);
        else
            count_pieces(L->x + s * L->S, L->S, P == 1 ? L->S : L->piece, P,
                         L->offsets + s * P + 1, L->bits ? L->bits + s * nw : NULL);
}

static void fill_item(void *c, int64_t item, void *scratch) {
    (void)scratch;
    lists_t *L = (lists_t *)c;
    const int64_t P = L->pieces > 1 ? L->pieces : 1;
    int64_t s0 = item * L->chunk, s1 = s0 + L->chunk < L->n_samples ? s0 + L->chunk : L->n_samples;
    const int64_t *off = L->offsets;
    /* a list's spare entries may be overwritten where the chunk's later lists, written
       after, cover them; past the chunk's end they are another thread's */
    for (int64_t s = s0; s < s1; s++) {
        const uint8_t *row = L->x + s * L->S;
        int32_t *out = L->idx + off[s * P];
        const int spare = off[s1 * P] - off[(s + 1) * P] >= 16;
        const int sparse = 5 * (off[(s + 1) * P] - off[s * P]) <= L->S;
#if LIST_BITS
        if (L->bits) {
            list_bits(L->bits + s * ((L->S + 63) / 64), L->S, L->stride, out, spare, sparse);
            continue;
        }
#endif
        if (!spare)
            list_spikes(row, L->S, L->stride, out);
        else if (sparse)
            list_spikes_sparse(row, L->S, L->stride, out);
        else
            list_spikes_spare(row, L->S, L->stride, out);
    }
}

/* ------------------------------------------------------------------ accumulation */

/* out[0 .. N vectors) += sum over e of the weight row at w + idx[e], for a compile-time
   number N of vectors, so that the accumulators stay in registers. LOAD turns a weight address
   into one vector of VT (widening integer weights). */
#define DEF_ACC(NAME, WT, VT, LOAD, N)                                                \
    static __attribute__((noinline)) void NAME(const WT *restrict w,                   \
                                               const int32_t *restrict idx, int64_t n, \
                                               VT *restrict out) {                     \
        VT a[N];                                                                      \
        _Pragma("GCC unroll 16") for (int k = 0; k < N; k++) a[k] = (VT){0};          \
        for (int64_t e = 0; e < n; e++) {                                             \
            const WT *restrict r = w + idx[e];                                        \
            _Pragma("GCC unroll 16") for (int k = 0; k < N; k++) a[k] += LOAD(r + k * VL); \
        }                                                                             \
        _Pragma("GCC unroll 16") for (int k = 0; k < N; k++) out[k] += a[k];          \
    }

#if defined(__AVX512F__)
#define LOAD_I8(p) ((vi)_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p))))
#define LOAD_I16(p) ((vi)_mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(p))))
#elif defined(__AVX2__)
#define LOAD_I8(p) ((vi)_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(p))))
#define LOAD_I16(p) ((vi)_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(p))))
#else /* portable; gcc may widen lane by lane */
#define LOAD_I8(p) __builtin_convertvector(*(const vb *)(p), vi)
#define LOAD_I16(p) __builtin_convertvector(*(const vh *)(p), vi)
#endif
#define LOAD_F32(p) (*(const vf *)(p))

#define DEF_ACC_1_8(SUF, WT, VT, LOAD)                                                \
    DEF_ACC(acc_##SUF##_1, WT, VT, LOAD, 1) DEF_ACC(acc_##SUF##_2, WT, VT, LOAD, 2)     \
    DEF_ACC(acc_##SUF##_3, WT, VT, LOAD, 3) DEF_ACC(acc_##SUF##_4, WT, VT, LOAD, 4)     \
    DEF_ACC(acc_##SUF##_5, WT, VT, LOAD, 5) DEF_ACC(acc_##SUF##_6, WT, VT, LOAD, 6)     \
    DEF_ACC(acc_##SUF##_7, WT, VT, LOAD, 7) DEF_ACC(acc_##SUF##_8, WT, VT, LOAD, 8)
#define CASE(SUF, K) case K: acc_##SUF##_##K(w, idx, n, out); break;
#if NV == 16
#define DEF_ACC_9_16(SUF, WT, VT, LOAD)                                               \
    DEF_ACC(acc_##SUF##_9, WT, VT, LOAD, 9) DEF_ACC(acc_##SUF##_10, WT, VT, LOAD, 10)   \
    DEF_ACC(acc_##SUF##_11, WT, VT, LOAD, 11) DEF_ACC(acc_##SUF##_12, WT, VT, LOAD, 12) \
    DEF_ACC(acc_##SUF##_13, WT, VT, LOAD, 13) DEF_ACC(acc_##SUF##_14, WT, VT, LOAD, 14) \
    DEF_ACC(acc_##SUF##_15, WT, VT, LOAD, 15) DEF_ACC(acc_##SUF##_16, WT, VT, LOAD, 16)
#define CASES_9_16(SUF) CASE(SUF, 9) CASE(SUF, 10) CASE(SUF, 11) CASE(SUF, 12)         \
    CASE(SUF, 13) CASE(SUF, 14) CASE(SUF, 15) CASE(SUF, 16)
#else
#define DEF_ACC_9_16(SUF, WT, VT, LOAD)
#define CASES_9_16(SUF)
#endif

/* acc_SUF(w, idx, n, nv, out): any 1 <= nv <= NV vectors */
#define DEF_ACC_ALL(SUF, WT, VT, LOAD)                                                \
    DEF_ACC_1_8(SUF, WT, VT, LOAD)                                                    \
    DEF_ACC_9_16(SUF, WT, VT, LOAD)                                                   \
    static void acc_##SUF(const WT *w, const int32_t *idx, int64_t n, int nv, VT *out) { \
        switch (nv) {                                                                 \
            CASE(SUF, 1) CASE(SUF, 2) CASE(SUF, 3) CASE(SUF, 4)                       \
            CASE(SUF, 5) CASE(SUF, 6) CASE(SUF, 7) CASE(SUF, 8)                       \
            CASES_9_16(SUF)                                                           \
        }                                                                             \
    }

DEF_ACC_ALL(f32, float, vf, LOAD_F32)
DEF_ACC_ALL(i16, int16_t, vi, LOAD_I16)

#if defined(__AVX512BW__)
/* 8-bit weights: 32 int16 lanes per vector halve the widening work (one vpmovsxbw per 32
   columns); 256 weights of magnitude <= 128 fit int16, so the int16 sums are flushed into
   int32 every 256 events. out: 2N int32 vectors, added to (the block's vectors rounded up to
   even; the extra one reads the next 16 columns, in the row padding or the spare tail). */
#define DEF_ACC_W(NAME, N)                                                            \
    static __attribute__((noinline)) void NAME(const int8_t *restrict w,               \
                                               const int32_t *restrict idx, int64_t n, \
                                               vi *restrict out) {                     \
        for (int64_t e0 = 0; e0 < n; e0 += 256) {                                     \
            int64_t e1 = n - e0 < 256 ? n : e0 + 256;                                 \
            __m512i a[N];                                                             \
            _Pragma("GCC unroll 16") for (int k = 0; k < N; k++) a[k] = _mm512_setzero_si512(); \
            for (int64_t e = e0; e < e1; e++) {                                       \
                const int8_t *restrict r = w + idx[e];                                \
                _Pragma("GCC unroll 16") for (int k = 0; k < N; k++) a[k] = _mm512_add_epi16( \
                    a[k], _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(r + 32 * k)))); \
            }                                                                         \
            _Pragma("GCC unroll 16") for (int k = 0; k < N; k++) {                    \
                out[2 * k] += (vi)_mm512_cvtepi16_epi32(_mm512_castsi512_si256(a[k]));  \
                out[2 * k + 1] += (vi)_mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(a[k], 1)); \
            }                                                                         \
        }                                                                             \
    }
DEF_ACC_W(accw_1, 1) DEF_ACC_W(accw_2, 2) DEF_ACC_W(accw_3, 3) DEF_ACC_W(accw_4, 4)
DEF_ACC_W(accw_5, 5) DEF_ACC_W(accw_6, 6) DEF_ACC_W(accw_7, 7) DEF_ACC_W(accw_8, 8)

static void acc_i8(const int8_t *w, const int32_t *idx, int64_t n, int nv, vi *out) {
    switch ((nv + 1) / 2) {
        case 1: accw_1(w, idx, n, out); break;
        case 2: accw_2(w, idx, n, out); break;
        case 3: accw_3(w, idx, n, out); break;
        case 4: accw_4(w, idx, n, out); break;
        case 5: accw_5(w, idx, n, out); break;
        case 6: accw_6(w, idx, n, out); break;
        case 7: accw_7(w, idx, n, out); break;
        case 8: accw_8(w, idx, n, out); break;
    }
}
#else
DEF_ACC_ALL(i8, int8_t, vi, LOAD_I8)
#endif

/* ------------------------------------------------------------------ the neuron update */

/* Per-neuron parameters [N] and flags, as in snnkit.neurons.NeuronParams. */
typedef struct {
    const void *alpha, *beta, *threshold, *v_reset, *bias, *adapt_plus, *adapt_decay, *v_init;
    const int32_t *refractory; /* [N] steps */
    const void *c1, *c2; /* reset="delayed": inputs 1 and 2 steps after a spike [N], or NULL */
    int has_alpha, has_bias, subtract, has_refractory, adaptive;
    /* fixed point only */
    int decay_bits;
    int64_t lo, hi;
    /* a plain LIF (no synaptic current, refractory period or adaptation) with its states
       within int16 (lo >= -2^15, hi < 2^15, v_init, v_reset and threshold inside [lo, hi]) and
       beta within [0, 2^15): its decay product is then one VNNI multiply-add */
    int narrow;
} neuron_t;

/* One population's run: see snn_layer_* below. */
typedef struct {
    int64_t T, B, N, S, Np; /* Np: padded row length of the weights */
    const int64_t *offsets;
    const int32_t *idx;
    const void *w;   /* [S, Np] */
    const void *dense; /* [T, B, N] or NULL */
    neuron_t p;
    uint8_t *spikes;  /* [T, B, N] */
    void *sums;       /* [T, B, N] or NULL: write the synaptic input instead of updating */
    void *rec_v, *rec_i, *rec_theta; /* [T, B, N] or NULL */
    int64_t n_blocks, per; /* blocks of `per` vectors (the last may have fewer) */
    int64_t group; /* item_f32_bb: batch elements per item */
    const float *slabs; /* item_f32_bb: the weights as slabs [ceil(N / (sw VL)), S, sw VL] laid
                           out once by the caller, or NULL: each item copies its block's */
    int64_t pieces; /* item_f32_bb: lists a sample (lists_t.pieces) */
    int64_t sw; /* item_f32_bb: vectors a slab row, min(BB_W, the vectors of N) */
} layer_t;

#define FLOAT_SAT(x) (x)
#define FLOAT_DECAY(x, d) ((x) * (d))
/* two selects in a row, not nested: nested, gcc 12 could not vectorise the reset to v_reset */
#define FIXED_SAT(x)                                                                  \
    __extension__({                                                                   \
        __typeof__(lo + 0) s_ = (x);                                                  \
        s_ = s_ < lo ? lo : s_;                                                       \
        s_ > hi ? hi : s_;                                                            \
    })
#define FIXED_DECAY(x, d) (((x) * (d) + half) >> D)

/* The loop of DEF_UPDATE; SUB: reset by subtraction (1) or to v_reset (0). */
#define UPD_LOOP(ST, SAT, DECAY, GENERAL, SUB, BIAS, STORE_I)                              \
        _Pragma("GCC ivdep") /* element c only touches element c of every array */    \
        for (int64_t c = 0; c < n; c++) {                                             \
            /* 3. synaptic current */                                                 \
            ST i = GENERAL ? SAT(DECAY(I[c], alpha[c]) + x[c]) : SAT(x[c]);           \
            /* 4. membrane, one saturation of the three-term sum */                   \
            ST v = DECAY(V[c], beta[c]) + i;                                          \
            if (GENERAL || BIAS) v = v + bias[c];                                     \
            v = SAT(v);                                                               \
            /* refractory neurons hold v */                                           \
            int32_t r = GENERAL ? R[c] : 0;                                           \
            int active = r == 0;                                                      \
            v = active ? v : V[c];                                                    \
            /* 5. spike: exact comparison with the adapted threshold */               \
            ST thr = GENERAL ? threshold[c] + TH[c] : threshold[c];                   \
            int spk = (v >= thr) & active;                                            \
            /* 6. reset */                                                            \
            ST vr = SUB ? SAT(v - thr) : v_reset[c];                                  \
            v = spk ? vr : v;                                                         \
            if (GENERAL) {                                                            \
                /* 7. refractory counter */                                           \
                R[c] = spk ? refractory[c] : (r > 0 ? r - 1 : 0);                     \
                /* 8. homeostasis */                                                  \
                TH[c] = SAT(DECAY(TH[c], adapt_decay[c]) + (spk ? adapt_plus[c] : 0)); \
            }                                                                         \
            V[c] = v;                                                                 \
            if (STORE_I) I[c] = i;                                                    \
            out[c] = (uint8_t)spk;                                                    \
        }

/* The neuron update of columns [0, n) of a block for one (t, b), neurons.neuron_step item
   for item; x is the synaptic input, V/I/TH/R the state. GENERAL = 0 is the LIF without
   synaptic current, refractory period and adaptation (plus its bias if BIAS), as
   neuron_step computes it then: i = sat(x), refrac and theta stay 0. Branch-free so that the
   compiler vectorises it. */
#define DEF_UPDATE(NAME, ST, SAT, DECAY, PRE, GENERAL, BIAS)                           \
    static inline __attribute__((always_inline)) void NAME##_k(                       \
        int64_t n, const neuron_t *p, const ST *restrict alpha, const ST *restrict beta, \
        const ST *restrict threshold, const ST *restrict v_reset, const ST *restrict bias, \
        const ST *restrict adapt_plus, const ST *restrict adapt_decay,                \
        const int32_t *restrict refractory, const ST *restrict x, ST *restrict V,      \
        ST *restrict I, ST *restrict TH, int32_t *restrict R, uint8_t *restrict out);  \
    static inline __attribute__((always_inline)) void NAME(                           \
        int64_t n, const neuron_t *p, int64_t c0, const ST *restrict x, ST *restrict V, \
        ST *restrict I, ST *restrict TH, int32_t *restrict R, uint8_t *restrict out) {  \
        /* the parameters as restrict arguments: gcc then needs no run-time alias checks \
           (more than 10 of them: the integer loop stayed scalar) */                  \
        NAME##_k(n, p, (const ST *)p->alpha + c0, (const ST *)p->beta + c0,            \
                 (const ST *)p->threshold + c0, (const ST *)p->v_reset + c0,           \
                 (const ST *)p->bias + c0, (const ST *)p->adapt_plus + c0,             \
                 (const ST *)p->adapt_decay + c0, p->refractory + c0, x, V, I, TH, R, out); \
    }                                                                                 \
    static inline __attribute__((always_inline)) void NAME##_k(                       \
        int64_t n, const neuron_t *p, const ST *restrict alpha, const ST *restrict beta, \
        const ST *restrict threshold, const ST *restrict v_reset, const ST *restrict bias, \
        const ST *restrict adapt_plus, const ST *restrict adapt_decay,                \
        const int32_t *restrict refractory, const ST *restrict x, ST *restrict V,      \
        ST *restrict I, ST *restrict TH, int32_t *restrict R, uint8_t *restrict out) { \
        PRE                                                                           \
        (void)alpha, (void)bias, (void)adapt_plus, (void)adapt_decay, (void)refractory; \
        (void)v_reset;                                                                \
        /* the reset's kind a constant of each loop: a loop-invariant choice inside it  \
           kept the integer loop from vectorising */                                  \
        /* I NULL (the plain LIF only): i is not stored, nothing reads it */          \
        if (p->subtract) {                                                            \
            if (GENERAL || I) {                                                       \
                UPD_LOOP(ST, SAT, DECAY, GENERAL, 1, BIAS, 1)                         \
            } else {                                                                  \
                UPD_LOOP(ST, SAT, DECAY, GENERAL, 1, BIAS, 0)                         \
            }                                                                         \
        } else if (GENERAL || I) {                                                    \
            UPD_LOOP(ST, SAT, DECAY, GENERAL, 0, BIAS, 1)                             \
        } else {                                                                      \
            UPD_LOOP(ST, SAT, DECAY, GENERAL, 0, BIAS, 0)                             \
        }                                                                             \
    }

#define FLOAT_PRE
#define FIXED_PRE(ST)                                                                 \
    const int D = p->decay_bits;                                                      \
    const ST half = D ? (ST)1 << (D - 1) : 0, lo = (ST)p->lo, hi = (ST)p->hi;
#define FIXED_PRE32 FIXED_PRE(int32_t)
#define FIXED_PRE64 FIXED_PRE(int64_t)

DEF_UPDATE(update_f32_lif, float, FLOAT_SAT, FLOAT_DECAY, FLOAT_PRE, 0, 0)
DEF_UPDATE(update_f32_bias, float, FLOAT_SAT, FLOAT_DECAY, FLOAT_PRE, 0, 1)
DEF_UPDATE(update_f32_gen, float, FLOAT_SAT, FLOAT_DECAY, FLOAT_PRE, 1, 1)
DEF_UPDATE(update_i32_lif, int32_t, FIXED_SAT, FIXED_DECAY, FIXED_PRE32, 0, 0)
DEF_UPDATE(update_i32_bias, int32_t, FIXED_SAT, FIXED_DECAY, FIXED_PRE32, 0, 1)
DEF_UPDATE(update_i32_gen, int32_t, FIXED_SAT, FIXED_DECAY, FIXED_PRE32, 1, 1)
DEF_UPDATE(update_i64_lif, int64_t, FIXED_SAT, FIXED_DECAY, FIXED_PRE64, 0, 0)
DEF_UPDATE(update_i64_bias, int64_t, FIXED_SAT, FIXED_DECAY, FIXED_PRE64, 0, 1)
DEF_UPDATE(update_i64_gen, int64_t, FIXED_SAT, FIXED_DECAY, FIXED_PRE64, 1, 1)

/* The LIF without synaptic current, refractory period or adaptation: the updates written
   for it alone (the _lif / _bias ones, the narrow and fused ones) apply */
#define PLAIN_LIF(p) (!((p)->has_alpha || (p)->has_refractory || (p)->adaptive))
/* update_f32 / _i32 / _i64: the general update, or the LIF with or without a bias when the
   population has no synaptic current, refractory period or adaptation (the plain LIF then
   never touches I's decay, TH or R: half the state traffic). */
#define DEF_UPDATE_ANY(NAME, ST)                                                      \
    static inline __attribute__((always_inline)) void NAME(                           \
        int64_t n, const neuron_t *p, int64_t c0, const ST *restrict x, ST *restrict V, \
        ST *restrict I, ST *restrict TH, int32_t *restrict R, uint8_t *restrict out) {  \
        if (!PLAIN_LIF(p))                                                            \
            NAME##_gen(n, p, c0, x, V, I, TH, R, out);                                \
        else if (p->has_bias)                                                         \
            NAME##_bias(n, p, c0, x, V, I, TH, R, out);                               \
        else                                                                          \
            NAME##_lif(n, p, c0, x, V, I, TH, R, out);                                \
    }
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__)
#define HAVE_NARROW 1
/* update_i32_lif / _bias for a narrow population (neuron_t.narrow), 16 neurons a vector, the
   same integers with fewer instructions: beta's upper 16 bits are 0 and V's lower 16 bits
   are V, so vpdpwssd gives half + V * beta in one instruction where gcc's vpmulld takes two
   and an add; and a spiking neuron's v - thr >= 0 >= lo needs only the upper saturation.
   The input is x (int32) or x16 (int16 sums, widened on load), plus the delayed reset's
   c1 / c2 where s1 / s2 (non-NULL) spiked, as delayed_i32 adds them (fused: one pass). */
static inline __attribute__((always_inline)) void update_i32_narrow_k(
    int64_t n, const neuron_t *p, int64_t c0, const int32_t *restrict x,
    const int16_t *restrict x16, const uint8_t *restrict s1, const uint8_t *restrict s2,
    int32_t *restrict V, int32_t *restrict I, uint8_t *restrict out, const int BIAS,
    const int SUB, const int D1, const int D2) {
    const int32_t *restrict beta = (const int32_t *)p->beta + c0;
    const int32_t *restrict thr = (const int32_t *)p->threshold + c0;
    const int32_t *restrict bias = (const int32_t *)p->bias + c0;
    const int32_t *restrict vres = (const int32_t *)p->v_reset + c0;
    const int32_t *restrict c1 = D1 ? (const int32_t *)p->c1 + c0 : NULL;
    const int32_t *restrict c2 = D2 ? (const int32_t *)p->c2 + c0 : NULL;
    const int D = p->decay_bits;
    const __m512i lo = _mm512_set1_epi32((int32_t)p->lo), hi = _mm512_set1_epi32((int32_t)p->hi);
    const __m512i half = _mm512_set1_epi32(D ? 1 << (D - 1) : 0);
    const __m128i sh = _mm_cvtsi32_si128(D);
    const __m128i one = _mm_set1_epi8(1);
    for (int64_t c = 0; c < n; c += 16) {
        __mmask16 m = n - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - c)) - 1);
        __m512i i = x16 ? _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, x16 + c))
                        : _mm512_maskz_loadu_epi32(m, x + c);
        if (D1) {
            __m128i b = _mm_maskz_loadu_epi8(m, s1 + c);
            i = _mm512_mask_add_epi32(i, _mm_test_epi8_mask(b, b), i,
                                      _mm512_maskz_loadu_epi32(m, c1 + c));
        }
        if (D2) {
            __m128i b = _mm_maskz_loadu_epi8(m, s2 + c);
            i = _mm512_mask_add_epi32(i, _mm_test_epi8_mask(b, b), i,
                                      _mm512_maskz_loadu_epi32(m, c2 + c));
        }
        i = _mm512_min_epi32(_mm512_max_epi32(i, lo), hi);
        __m512i v = _mm512_dpwssd_epi32(half, _mm512_maskz_loadu_epi32(m, V + c),
                                        _mm512_maskz_loadu_epi32(m, beta + c));
        v = _mm512_add_epi32(_mm512_sra_epi32(v, sh), i);
        if (BIAS) v = _mm512_add_epi32(v, _mm512_maskz_loadu_epi32(m, bias + c));
        v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
        __m512i t = _mm512_maskz_loadu_epi32(m, thr + c);
        __mmask16 k = _mm512_mask_cmpge_epi32_mask(m, v, t);
        __m512i vr = SUB ? _mm512_min_epi32(_mm512_sub_epi32(v, t), hi)
                         : _mm512_maskz_loadu_epi32(m, vres + c);
        v = _mm512_mask_mov_epi32(v, k, vr);
        _mm512_mask_storeu_epi32(V + c, m, v);
        if (I) _mm512_mask_storeu_epi32(I + c, m, i);
        _mm_mask_storeu_epi8(out + c, m, _mm_maskz_mov_epi8(k, one));
    }
}
/* update_i32_narrow_k with its choices constant in each loop (a choice inside, gcc kept it
   there, with pointers spilled to the stack); I NULL: i is not stored (nothing reads it). */
#define NARROW_CASE(B, S, D1, D2)                                                     \
    case B * 8 + S * 4 + D1 * 2 + D2:                                                 \
        update_i32_narrow_k(n, p, c0, x, x16, s1, s2, V, I, out, B, S, D1, D2);       \
        break;
static inline __attribute__((always_inline)) void update_i32_narrow(
    int64_t n, const neuron_t *p, int64_t c0, const int32_t *restrict x,
    const int16_t *restrict x16, const uint8_t *s1, const uint8_t *s2, int32_t *restrict V,
    int32_t *restrict I, uint8_t *restrict out) {
    int d1 = p->c1 && s1, d2 = p->c2 && s2;
    switch (!!p->has_bias * 8 + !!p->subtract * 4 + d1 * 2 + d2) {
        NARROW_CASE(0, 0, 0, 0) NARROW_CASE(0, 0, 0, 1) NARROW_CASE(0, 0, 1, 0)
        NARROW_CASE(0, 0, 1, 1) NARROW_CASE(0, 1, 0, 0) NARROW_CASE(0, 1, 0, 1)
        NARROW_CASE(0, 1, 1, 0) NARROW_CASE(0, 1, 1, 1) NARROW_CASE(1, 0, 0, 0)
        NARROW_CASE(1, 0, 0, 1) NARROW_CASE(1, 0, 1, 0) NARROW_CASE(1, 0, 1, 1)
        NARROW_CASE(1, 1, 0, 0) NARROW_CASE(1, 1, 0, 1) NARROW_CASE(1, 1, 1, 0)
        NARROW_CASE(1, 1, 1, 1)
    }
}
/* Whether update_i32_narrow applies to p: narrow, and the plain LIF. */
#define NARROW_LIF(p) ((p)->narrow && PLAIN_LIF(p))
#endif

DEF_UPDATE_ANY(update_f32, float)
DEF_UPDATE_ANY(update_i64, int64_t)
#define update_i32_any_gen update_i32_gen
#define update_i32_any_bias update_i32_bias
#define update_i32_any_lif update_i32_lif
DEF_UPDATE_ANY(update_i32_any, int32_t)
static inline __attribute__((always_inline)) void update_i32(
    int64_t n, const neuron_t *p, int64_t c0, const int32_t *restrict x, int32_t *restrict V,
    int32_t *restrict I, int32_t *restrict TH, int32_t *restrict R, uint8_t *restrict out) {
#if HAVE_NARROW
    if (NARROW_LIF(p)) {
        update_i32_narrow(n, p, c0, x, NULL, NULL, NULL, V, I, out);
        return;
    }
#endif
    update_i32_any(n, p, c0, x, V, I, TH, R, out);
}

/* The delayed reset's inputs (snnkit.neurons.delayed_reset_inputs): x[c] += c1[c] where the
   neuron spiked one step ago (s1), c2[c] two steps ago (s2); s1, s2 NULL before step 1, 2.
   Every element gets an addition, zero or not, as in the torch path. */
#define DEF_DELAYED(NAME, ST)                                                         \
    static void NAME(int64_t n, const neuron_t *p, int64_t c0, const uint8_t *s1,      \
                     const uint8_t *s2, ST *restrict x) {                              \
        const ST zero = 0;                                                            \
        if (p->c1) {                                                                  \
            const ST *c1 = (const ST *)p->c1 + c0;                                    \
            for (int64_t c = 0; c < n; c++) x[c] += (s1 && s1[c]) ? c1[c] : zero;     \
        }                                                                             \
        if (p->c2) {                                                                  \
            const ST *c2 = (const ST *)p->c2 + c0;                                    \
            for (int64_t c = 0; c < n; c++) x[c] += (s2 && s2[c]) ? c2[c] : zero;     \
        }                                                                             \
    }
DEF_DELAYED(delayed_f32, float)
DEF_DELAYED(delayed_i32, int32_t)
DEF_DELAYED(delayed_i64, int64_t)

/* One work item = (block, batch element), block-major: all T steps of one block of columns
   for one batch element. Scratch: accumulators + state, 5 * BLOCK 32-bit words. */
#define DEF_LAYER_ITEM(NAME, ST, VT, ACC, WT, UPD, DELAYED)                             \
    static void NAME(void *ctx, int64_t item, void *scratch) {                        \
        const layer_t *L = (const layer_t *)ctx;                                      \
        const neuron_t *p = &L->p;                                                    \
        int64_t blk = item / L->B, b = item % L->B;                                   \
        int64_t per = L->per;                                                         \
        int64_t c0 = blk * per * VL, n = L->N - c0 < per * VL ? L->N - c0 : per * VL; \
        int nv = (int)((n + VL - 1) / VL);                                            \
        ST *x = (ST *)scratch, *V = x + BLOCK, *I = V + BLOCK, *TH = I + BLOCK;       \
        int32_t *R = (int32_t *)(TH + BLOCK);                                         \
        for (int64_t c = 0; c < n; c++) {                                             \
            V[c] = ((const ST *)p->v_init)[c0 + c];                                   \
            I[c] = 0;                                                                 \
            TH[c] = 0;                                                                \
            R[c] = 0;                                                                 \
        }                                                                             \
        const WT *w = (const WT *)L->w + c0;                                          \
        for (int64_t t = 0; t < L->T; t++) {                                          \
            int64_t s = t * L->B + b, o = s * L->N + c0, step = L->B * L->N;          \
            memset(x, 0, sizeof(ST) * BLOCK);                                         \
            if (L->S)                                                                 \
                ACC(w, L->idx + L->offsets[s], L->offsets[s + 1] - L->offsets[s], nv, (VT *)x); \
            if (L->dense) {                                                           \
                const ST *d = (const ST *)L->dense + o;                               \
                for (int64_t c = 0; c < n; c++) x[c] += d[c];                         \
            }                                                                         \
            if (L->sums) {                                                            \
                memcpy((ST *)L->sums + o, x, sizeof(ST) * n);                         \
                continue;                                                             \
            }                                                                         \
            DELAYED(n, p, c0, t >= 1 ? L->spikes + o - step : NULL,                   \
                    t >= 2 ? L->spikes + o - 2 * step : NULL, x);                     \
            UPD(n, p, c0, x, V, I, TH, R, L->spikes + o);                              \
            /* after the update the state is the step's recorded value */             \
            if (L->rec_v) memcpy((ST *)L->rec_v + o, V, sizeof(ST) * n);              \
            if (L->rec_i) memcpy((ST *)L->rec_i + o, I, sizeof(ST) * n);              \
            if (L->rec_theta) memcpy((ST *)L->rec_theta + o, TH, sizeof(ST) * n);     \
        }                                                                             \
    }

DEF_LAYER_ITEM(item_f32, float, vf, acc_f32, float, update_f32, delayed_f32)
DEF_LAYER_ITEM(item_i8, int32_t, vi, acc_i8, int8_t, update_i32, delayed_i32)
DEF_LAYER_ITEM(item_i16, int32_t, vi, acc_i16, int16_t, update_i32, delayed_i32)

/* ------------------------------------------------------------------ float, batch-blocked */

/* Float weights are 4 bytes a synaptic event. Summed block by block for one batch element at a
   time (item_f32), every event reads a 1 KB row slice of the block from L2, and that read
   bounds the layer. Here (batches of BB_MIN or more) a block's steps run for a group of batch
   elements at once: the weights laid out in slabs of BB_W vectors of columns [S, BB_W VL]
   (fewer where N has fewer; rows 256 bytes apart, contiguous: a row per page took a TLB miss
   per event; one offset load and its address for BB_W adds, where one vector a row spent more
   on them than on the adds), and per step the sums go slab by slab across the whole group, a
   piece of at most BB_PIECE sources at a time so that the piece (48 KB) stays in L1 while the
   group's events read it, samples interleaved (independent accumulators), each with its lists
   cut at the pieces (lists_t.pieces). Each sum is still its element's rows added in the same
   order from zero (a piece's sums stored and reloaded, exactly, for the next piece): bit for
   bit item_f32's. Against one vector a row over all sources at once: ~5-8% off sim_speed's ff
   layer (4 vectors a row without pieces, or pieces with 1 vector a row: no faster). */
#define BB_MIN 8      /* batch elements from which the blocked item is used */
#define BB_GROUP 64   /* batch elements per item, at most */
#define BB_MAX_S 4096 /* sources up to which it is: the copied weights, 4 MB a block */
#define BB_G 8        /* batch elements summed side by side (bsums_f32) */
#define BB_W 4        /* vectors of columns a slab row */
#if NV == 16
#define BB_GW 4 /* batch elements summed side by side (bsums_w_f32): 16 accumulators */
#else
#define BB_GW 2 /* (8 of the 16 registers) */
#endif
#define BB_PIECE 192  /* sources a piece at most: 192 x BB_W x 64 bytes (narrower slabs: more) */

/* x[r * ld + k * VL ...] = the sum of sample r's event rows (idx: offsets into a slab) in
   the slab k [S, VL] of w, for the block's nv vectors and the group's nb samples. */
static void bsums_f32(const float *restrict w, int64_t S, const int32_t *restrict idx,
                      const int64_t *restrict off, int64_t nb, int nv, float *restrict x,
                      int64_t ld) {
    for (int k = 0; k < nv; k++) {
        const float *restrict wk = w + k * S * VL;
        int64_t r = 0;
        for (; r + BB_G <= nb; r += BB_G) {
            const int32_t *ip[BB_G];
            int64_t ne[BB_G], m = INT64_MAX;
            vf a[BB_G];
            _Pragma("GCC unroll 16") for (int g = 0; g < BB_G; g++) {
                ip[g] = idx + off[r + g];
                ne[g] = off[r + g + 1] - off[r + g];
                m = ne[g] < m ? ne[g] : m;
                a[g] = (vf){0};
            }
            int64_t e = 0;
            /* two offsets a load (the loads, not the adds, bound this loop) */
            for (; e + 2 <= m; e += 2) {
                _Pragma("GCC unroll 16") for (int g = 0; g < BB_G; g++) {
                    uint64_t q;
                    memcpy(&q, ip[g] + e, 8);
                    a[g] += LOAD_F32(wk + (int32_t)(uint32_t)q);
                    a[g] += LOAD_F32(wk + (int32_t)(uint32_t)(q >> 32));
                }
            }
            _Pragma("GCC unroll 16") for (int g = 0; g < BB_G; g++) {
                for (int64_t f = e; f < ne[g]; f++) a[g] += LOAD_F32(wk + ip[g][f]);
                *(vf *)(x + (r + g) * ld + k * VL) = a[g];
            }
        }
        for (; r < nb; r++) {
            const int32_t *i0 = idx + off[r];
            vf a0 = {0};
            for (int64_t e = 0; e < off[r + 1] - off[r]; e++) a0 += LOAD_F32(wk + i0[e]);
            *(vf *)(x + r * ld + k * VL) = a0;
        }
    }
}

/* x[r * ld + h * VL ...] (h < W) = the sum of sample r's event rows (idx: offsets into w) in
   the slab w [S, BB_W VL] (its first W vectors), for the group's nb samples, BB_GW at a
   time; piece p of sample r's list runs from off[r P + p] to
   off[r P + p + 1] (lists_t.pieces), the pieces one after the other, each continuing from the
   sums of the ones before. The event loop runs to the shortest list of the BB_GW, the rest of
   each list after it one by one. */
#define DEF_BSUMS_W(NAME, W)                                                              \
    static void NAME(const float *restrict w, const int32_t *restrict idx,                \
                     const int64_t *restrict off, int64_t P, int64_t nb, float *restrict x, \
                     int64_t ld) {                                                         \
        for (int64_t p = 0; p < P; p++) {                                                 \
            int64_t j = 0;                                                                \
            for (; j + BB_GW <= nb; j += BB_GW) {                                         \
                const int32_t *ip[BB_GW];                                                 \
                int64_t ne[BB_GW], rg[BB_GW], m = INT64_MAX;                              \
                vf a[BB_GW][W];                                                           \
                _Pragma("GCC unroll 16") for (int g = 0; g < BB_GW; g++) {                \
                    rg[g] = j + g;                                                        \
                    const int64_t *o = off + rg[g] * P + p;                               \
                    ip[g] = idx + o[0];                                                   \
                    ne[g] = o[1] - o[0];                                                  \
                    m = ne[g] < m ? ne[g] : m;                                            \
                    _Pragma("GCC unroll 16") for (int h = 0; h < W; h++)                  \
                        a[g][h] = p ? *(const vf *)(x + rg[g] * ld + h * VL) : (vf){0};   \
                }                                                                         \
                int64_t e = 0;                                                            \
                /* two offsets a load; they are >= 0, so zero-extended (a move the CPU   \
                   may eliminate, not a sign extension) */                                \
                for (; e + 2 <= m; e += 2) {                                              \
                    _Pragma("GCC unroll 16") for (int g = 0; g < BB_GW; g++) {            \
                        uint64_t q;                                                       \
                        memcpy(&q, ip[g] + e, 8);                                         \
                        const float *r0 = w + (uint32_t)q, *r1 = w + (uint32_t)(q >> 32); \
                        _Pragma("GCC unroll 16") for (int h = 0; h < W; h++)              \
                            a[g][h] += LOAD_F32(r0 + h * VL);                             \
                        _Pragma("GCC unroll 16") for (int h = 0; h < W; h++)              \
                            a[g][h] += LOAD_F32(r1 + h * VL);                             \
                    }                                                                     \
                }                                                                         \
                _Pragma("GCC unroll 16") for (int g = 0; g < BB_GW; g++) {                \
                    for (int64_t f = e; f < ne[g]; f++)                                   \
                        _Pragma("GCC unroll 16") for (int h = 0; h < W; h++)              \
                            a[g][h] += LOAD_F32(w + ip[g][f] + h * VL);                   \
                    _Pragma("GCC unroll 16") for (int h = 0; h < W; h++)                  \
                        *(vf *)(x + rg[g] * ld + h * VL) = a[g][h];                       \
                }                                                                         \
            }                                                                             \
            for (; j < nb; j++) {                                                         \
                const int64_t r = j, *o = off + r * P + p;                                \
                const int32_t *i0 = idx + o[0];                                           \
                vf a0[W];                                                                 \
                _Pragma("GCC unroll 16") for (int h = 0; h < W; h++)                      \
                    a0[h] = p ? *(const vf *)(x + r * ld + h * VL) : (vf){0};             \
                for (int64_t e = 0; e < o[1] - o[0]; e++)                                 \
                    _Pragma("GCC unroll 16") for (int h = 0; h < W; h++)                  \
                        a0[h] += LOAD_F32(w + i0[e] + h * VL);                            \
                _Pragma("GCC unroll 16") for (int h = 0; h < W; h++)                      \
                    *(vf *)(x + r * ld + h * VL) = a0[h];                                 \
            }                                                                             \
        }                                                                                 \
    }
DEF_BSUMS_W(bsums_w1_f32, 1)
DEF_BSUMS_W(bsums_w2_f32, 2)
DEF_BSUMS_W(bsums_w3_f32, 3)
DEF_BSUMS_W(bsums_w4_f32, BB_W)

/* the DEF_BSUMS_W of the slab's first nw vectors (BB_W from BB_W on) */
static void bsums_w_f32(int nw, const float *w, const int32_t *idx, const int64_t *off,
                        int64_t P, int64_t nb, float *x, int64_t ld) {
    switch (nw) {
        case 1: bsums_w1_f32(w, idx, off, P, nb, x, ld); break;
        case 2: bsums_w2_f32(w, idx, off, P, nb, x, ld); break;
        case 3: bsums_w3_f32(w, idx, off, P, nb, x, ld); break;
        default: bsums_w4_f32(w, idx, off, P, nb, x, ld); break;
    }
}

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define BB_FUSED 1
/* The neuron update of one vector of columns (c, the first m of its 16 lanes real: the
   parameters at p's c) for nr rows, its parameters in registers: row r's sums x + r ldx, its
   state V + r ldv, spikes out + r lds (one and two steps before: s1, s2 + r lds, or NULL),
   extra input dense + r lds and recorded states rv / ri / rt + r lds (each NULL or not). The
   LIF without synaptic current, refractory period or adaptation, with or without a bias and
   the delayed reset, operation for operation UPD_LOOP's (and delayed_f32's). */
static void lif_rows_f32(const neuron_t *p, int64_t c, int m, int64_t nr, const float *x,
                         int64_t ldx, float *restrict V, int64_t ldv, uint8_t *restrict out,
                         const uint8_t *s1p, const uint8_t *s2p, const float *dense,
                         float *rv, float *ri, float *rt, int64_t lds) {
    const __mmask16 k = (__mmask16)((1u << m) - 1);
    const __m512 zero = _mm512_setzero_ps();
    const __m512 beta = _mm512_maskz_loadu_ps(k, (const float *)p->beta + c);
    const __m512 thr = _mm512_maskz_loadu_ps(k, (const float *)p->threshold + c);
    const __m512 vres = _mm512_maskz_loadu_ps(k, (const float *)p->v_reset + c);
    const __m512 bias = p->has_bias ? _mm512_maskz_loadu_ps(k, (const float *)p->bias + c) : zero;
    const __m512 c1 = p->c1 ? _mm512_maskz_loadu_ps(k, (const float *)p->c1 + c) : zero;
    const __m512 c2 = p->c2 ? _mm512_maskz_loadu_ps(k, (const float *)p->c2 + c) : zero;
    const __m128i ones = _mm_set1_epi8(1);
    /* the flags in locals: the stores below may alias *p for all gcc knows, and it reloaded
       them every row */
    const int has_c1 = p->c1 != NULL, has_c2 = p->c2 != NULL, has_bias = p->has_bias;
    const int subtract = p->subtract;
    for (int64_t r = 0; r < nr; r++) {
        const int64_t o = r * lds;
        __m512 xi = _mm512_maskz_loadu_ps(k, x + r * ldx);
        if (dense) xi = _mm512_add_ps(xi, _mm512_maskz_loadu_ps(k, dense + o));
        if (has_c1) {
            __m128i s1 = s1p ? _mm_maskz_loadu_epi8(k, s1p + o) : _mm_setzero_si128();
            xi = _mm512_add_ps(xi, _mm512_maskz_mov_ps(_mm_test_epi8_mask(s1, s1), c1));
        }
        if (has_c2) {
            __m128i s2 = s2p ? _mm_maskz_loadu_epi8(k, s2p + o) : _mm_setzero_si128();
            xi = _mm512_add_ps(xi, _mm512_maskz_mov_ps(_mm_test_epi8_mask(s2, s2), c2));
        }
        /* 3-4: i = x; v = v * beta + i (+ bias) */
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, V + r * ldv), beta), xi);
        if (has_bias) v = _mm512_add_ps(v, bias);
        /* 5-6: spike, reset */
        __mmask16 spk = _mm512_cmp_ps_mask(v, thr, _CMP_GE_OQ) & k;
        v = _mm512_mask_mov_ps(v, spk, subtract ? _mm512_sub_ps(v, thr) : vres);
        _mm512_mask_storeu_ps(V + r * ldv, k, v);
        _mm_mask_storeu_epi8(out + o, k, _mm_maskz_mov_epi8(spk, ones));
        if (rv) _mm512_mask_storeu_ps(rv + o, k, v);
        if (ri) _mm512_mask_storeu_ps(ri + o, k, xi);
        if (rt) _mm512_mask_storeu_ps(rt + o, k, zero);
    }
}

/* lif_rows_f32 for vector c of a layer's group of nb samples at step t, right after that
   vector's sums (x, stride ld), its state V [nb, VL] in L1. */
static void fused_update_f32(const layer_t *L, const neuron_t *p, int64_t c, int m, int64_t t,
                             int64_t b0, int64_t nb, const float *x, int64_t ld,
                             float *restrict V) {
    const int64_t N = L->N, step = L->B * N, o0 = (t * L->B + b0) * N + c;
    uint8_t *spikes = L->spikes + o0;
    lif_rows_f32(p, c, m, nb, x, ld, V, VL, spikes, t >= 1 ? spikes - step : NULL,
                 t >= 2 ? spikes - 2 * step : NULL, L->dense ? (const float *)L->dense + o0 : NULL,
                 L->rec_v ? (float *)L->rec_v + o0 : NULL, L->rec_i ? (float *)L->rec_i + o0 : NULL,
                 L->rec_theta ? (float *)L->rec_theta + o0 : NULL, N);
}
#else
#define BB_FUSED 0
#endif

/* One item = (block of columns, group of L->group batch elements); as item_f32 otherwise.
   The block's vectors are a multiple of L->sw (but the last block's). Scratch: (5 * group +
   S) * BLOCK floats. */
static void item_f32_bb(void *ctx, int64_t item, void *scratch) {
    const layer_t *L = (const layer_t *)ctx;
    const neuron_t *p = &L->p;
    int64_t G = L->group, n_groups = (L->B + G - 1) / G;
    int64_t blk = item / n_groups, b0 = item % n_groups * G;
    int64_t nb = L->B - b0 < G ? L->B - b0 : G;
    int64_t per = L->per;
    int64_t c0 = blk * per * VL, n = L->N - c0 < per * VL ? L->N - c0 : per * VL;
    const int sw = (int)L->sw, nv = (int)((n + VL - 1) / VL), nq = (nv + sw - 1) / sw;
    const int64_t S = L->S, WV = sw * VL; /* a slab row */
    float *x = (float *)scratch, *V = x + G * BLOCK, *I = V + G * BLOCK, *TH = I + G * BLOCK;
    int32_t *R = (int32_t *)(TH + G * BLOCK);
    float *w = (float *)(R + G * BLOCK);
    if (L->slabs)
        w = (float *)L->slabs + c0 * S; /* (the kernel reads them only) */
    else /* the block's slabs [nq, S, sw VL], zeros past its vectors */
        for (int q = 0; q < nq; q++)
            for (int64_t s = 0; s < S; s++)
                for (int h = 0; h < sw; h++)
                    *(vf *)(w + (q * S + s) * WV + h * VL) =
                        q * sw + h < nv
                            ? LOAD_F32((const float *)L->w + s * L->Np + c0 + (q * sw + h) * VL)
                            : (vf){0};
    for (int64_t r = 0; r < nb; r++)
        for (int64_t c = 0; c < n; c++) {
            V[r * BLOCK + c] = ((const float *)p->v_init)[c0 + c];
            I[r * BLOCK + c] = TH[r * BLOCK + c] = 0;
            R[r * BLOCK + c] = 0;
        }
    const int64_t step = L->B * L->N, P = L->pieces;
#if BB_FUSED
    if (!L->sums && PLAIN_LIF(p)) {
        /* each vector's update right after its slab's sums (V: [nv, nb, VL]) */
        for (int k = 0; k < nv; k++)
            for (int64_t r = 0; r < nb; r++)
                for (int j = 0; j < VL; j++)
                    V[(k * nb + r) * VL + j] =
                        k * VL + j < n ? ((const float *)p->v_init)[c0 + k * VL + j] : 0;
        for (int64_t t = 0; t < L->T; t++) {
            const int64_t *off = L->offsets + (t * L->B + b0) * P;
            for (int q = 0; q < nq; q++) {
                bsums_w_f32(nv - q * sw, w + q * S * WV, L->idx, off, P, nb, x + q * WV, BLOCK);
                for (int k = q * sw; k < nv && k < (q + 1) * sw; k++)
                    fused_update_f32(L, p, c0 + k * VL, n - k * VL < VL ? (int)(n - k * VL) : VL,
                                     t, b0, nb, x + k * VL, BLOCK, V + k * nb * VL);
            }
        }
        return;
    }
#endif
    for (int64_t t = 0; t < L->T; t++) {
        const int64_t *off = L->offsets + (t * L->B + b0) * P;
        for (int q = 0; q < nq; q++)
            bsums_w_f32(nv - q * sw, w + q * S * WV, L->idx, off, P, nb, x + q * WV, BLOCK);
        for (int64_t r = 0; r < nb; r++) {
            int64_t o = (t * L->B + b0 + r) * L->N + c0;
            float *xr = x + r * BLOCK, *Vr = V + r * BLOCK, *Ir = I + r * BLOCK;
            float *THr = TH + r * BLOCK;
            int32_t *Rr = R + r * BLOCK;
            if (L->dense) {
                const float *d = (const float *)L->dense + o;
                for (int64_t c = 0; c < n; c++) xr[c] += d[c];
            }
            if (L->sums) {
                memcpy((float *)L->sums + o, xr, sizeof(float) * n);
                continue;
            }
            delayed_f32(n, p, c0, t >= 1 ? L->spikes + o - step : NULL,
                        t >= 2 ? L->spikes + o - 2 * step : NULL, xr);
            update_f32(n, p, c0, xr, Vr, Ir, THr, Rr, L->spikes + o);
            if (L->rec_v) memcpy((float *)L->rec_v + o, Vr, sizeof(float) * n);
            if (L->rec_i) memcpy((float *)L->rec_i + o, Ir, sizeof(float) * n);
            if (L->rec_theta) memcpy((float *)L->rec_theta + o, THr, sizeof(float) * n);
        }
    }
}

/* ------------------------------------------------------------------ sums on AMX */

#include "_kernels_amx.c"

/* ------------------------------------------------------------------ step by step */

#include "_kernels_step.c"

/* ------------------------------------------------------------------ entry point */

int snn_vector_lanes(void) { return VL; }

/* vectors of columns a row of the float layer's slabs (snnkit.kernels.slabs) */
int snn_slab_width(void) { return BB_W; }

/* Run one population over T steps. x: spikes [T*B, S] as bytes 0/1 (S may be 0: no spiking
   sources); w: weights [S, Np] (transposed, rows padded to Np >= N, a multiple of the vector
   lanes, then 16 spare elements), float32 for kind 0, int8/int16 for kinds 1/2; wv: kind 1,
   the same weights packed for AMX (snnkit.kernels.pack_amx), kind 0, the same as slabs [ceil(N
   / (sw VL)), S, sw VL], sw = min(snn_slab_width(), ceil(N / VL)) (snnkit.kernels.slabs: the
   batch-blocked item then reads them instead of copying its block's), or NULL; dense: extra
   input [T, B, N] in the state type (float32 or int32) or NULL; p: neuron parameters [N] in
   the state type; spikes: output [T, B, N] bytes; rec_*: recorded states [T, B, N] or NULL;
   sums: NULL, or [T, B, N] in the state type to receive the synaptic input (event sums +
   dense) instead of running neurons. Returns 0, -1 when memory ran out, -2 for a bad kind. */
int snn_layer_bf16(int kind, int64_t T, int64_t B, int64_t N, int64_t S, int64_t Np,
                   const uint8_t *x, const void *w, const void *wv, const void *dense,
                   const neuron_t *p, uint8_t *spikes, void *rec_v, void *rec_i,
                   void *rec_theta, void *sums, int n_threads, const void *wb, int64_t parts,
                   double density);

int snn_layer(int kind, int64_t T, int64_t B, int64_t N, int64_t S, int64_t Np,
              const uint8_t *x, const void *w, const void *wv, const void *dense,
              const neuron_t *p, uint8_t *spikes, void *rec_v, void *rec_i, void *rec_theta,
              void *sums, int n_threads) {
    return snn_layer_bf16(kind, T, B, N, S, Np, x, w, wv, dense, p, spikes, rec_v, rec_i,
                          rec_theta, sums, n_threads, NULL, 0, 0.0);
}

/* snn_layer, and for float weights (kind 0) with wb (their 1-3 bf16 parts packed by
   snnkit.kernels.pack_bf16, parts of them) the sums on the AMX bf16 tiles where the CPU has
   them and at least `density` of the sources spike per sample (the share the tiles compute:
   groups of 64 samples). */
int snn_layer_bf16(int kind, int64_t T, int64_t B, int64_t N, int64_t S, int64_t Np,
                   const uint8_t *x, const void *w, const void *wv, const void *dense,
                   const neuron_t *p, uint8_t *spikes, void *rec_v, void *rec_i,
                   void *rec_theta, void *sums, int n_threads, const void *wb, int64_t parts,
                   double density) {
    void (*item)(void *, int64_t, void *);
    switch (kind) {
        case 0: item = item_f32; break;
        case 1: item = item_i8; break;
        case 2: item = item_i16; break;
        default: return -2;
    }
    int64_t n_samples = T * B;
    /* float, batch large enough, the block's weights not too large: the blocked item, its
       lists cut into pieces of sources of at most BB_PIECE, evened out (16 apart) */
    int bb = kind == 0 && B >= BB_MIN && S && S <= BB_MAX_S;
    const int64_t nvec = (N + VL - 1) / VL, sw = nvec < BB_W ? nvec : BB_W;
    const int64_t most = BB_PIECE * BB_W / (sw ? sw : 1); /* sources a piece */
    int64_t pieces = bb ? (S + most - 1) / most : 1;
    int64_t piece = ((S + pieces - 1) / pieces + 15) / 16 * 16;
    pieces = bb ? (S + piece - 1) / piece : 1;
    int64_t *offsets = calloc((size_t)(pieces * n_samples) + 1, sizeof(int64_t));
    if (!offsets) return -1;
    int32_t *idx = NULL;
    int rc = 0;
    int64_t total = 0; /* spikes */
    uint64_t *bits = NULL;
    /* (not where the int8 tiles may take the layer: then nothing lists the spikes) */
    if (S && LIST_BITS && !(kind == 1 && wv && snn_amx_available())) {
        bits = malloc(sizeof(uint64_t) * (size_t)(n_samples * ((S + 63) / 64)));
        if (!bits) {
            free(offsets);
            return -1;
        }
    }
    if (S) {
        lists_t Ls = {x, n_samples, S, bb ? sw * VL : Np, offsets, NULL, 64, /* row offsets */
                      pieces, piece, bits};
        const int64_t nl = pieces * n_samples, n_chunks = (n_samples + Ls.chunk - 1) / Ls.chunk;
        rc = parallel_for(count_item, &Ls, n_chunks, n_threads, 0);
        for (int64_t s = 0; s < nl; s++) offsets[s + 1] += offsets[s];
        total = offsets[nl];
#ifdef HAVE_AMX
        /* the tiles compute 32 batch elements: with fewer, their share of the work is real */
        const double used = B < AMX_ROWS ? (double)B / AMX_ROWS : 1.0;
        if (!rc && kind == 1 && wv && snn_amx_available()
            && (double)total * used >= AMX_DENSITY * (double)n_samples * (double)S
            && (double)(n_samples + AMX_ROWS) * (double)S <= AMX_MAX_COPY) {
            free(offsets);
            free(bits);
            return layer_amx(T, B, N, S, x, wv, dense, p, spikes, rec_v, rec_i, rec_theta,
                             sums, n_threads);
        }
#endif
#ifdef HAVE_AMX_BF16
        const double share = B < AMX_BF_ROWS ? (double)B / AMX_BF_ROWS : 1.0;
        if (!rc && kind == 0 && wb && parts >= 1 && parts <= 3 && snn_amx_available()
            && (double)total * share >= density * (double)n_samples * (double)S
            && (double)(n_samples + AMX_BF_ROWS) * (double)S * 2 <= AMX_MAX_COPY) {
            free(offsets);
            free(bits);
            return layer_bf16(T, B, N, S, x, wb, parts, dense, p, spikes, rec_v, rec_i,
                              rec_theta, sums, n_threads);
        }
#else
        (void)wb, (void)parts, (void)density;
#endif
        idx = malloc(sizeof(int32_t) * (size_t)(total + 1));
        if (!idx) rc = -1;
        if (!rc) {
            Ls.idx = idx;
            rc = parallel_for(fill_item, &Ls, n_chunks, n_threads, 0);
        }
    }
    free(bits);
    if (!rc) {
        /* the row's vectors spread evenly over the blocks (63 = 16+16+16+15) */
        int64_t nb = (nvec + NV - 1) / NV;
        int64_t per = (nvec + nb - 1) / nb;
        if (bb) per = (per + sw - 1) / sw * sw; /* whole slabs a block (<= NV still) */
        layer_t L = {T, B, N, S, Np, offsets, idx, w, dense, *p, spikes, sums,
                     rec_v, rec_i, rec_theta, (nvec + per - 1) / per, per, 0, NULL, pieces, sw};
        if (bb) {
            /* groups of at most BB_GROUP, smaller while the threads would lack items (each
               item copies its block's weights once), then evened out */
            int64_t G = BB_GROUP;
            while (G > BB_MIN && L.n_blocks * ((B + G - 1) / G) < n_threads) G /= 2;
            int64_t n_groups = (B + G - 1) / G;
            L.group = (B + n_groups - 1) / n_groups;
            L.slabs = (const float *)wv;
            rc = parallel_for(item_f32_bb, &L, L.n_blocks * n_groups, n_threads,
                              (size_t)(5 * L.group + (wv ? 0 : S)) * BLOCK * 4);
        } else
            rc = parallel_for(item, &L, L.n_blocks * B, n_threads, 5 * BLOCK * 4);
    }
    free(idx);
    free(offsets);
    return rc;
}
