/*
 * MSPN pixel-to-window attention: fused CPU kernels. The blocked, vectorised kernels are
 * inference only; the "train" kernels at the end compute the same maths in plain layouts
 * with their backward passes, for training on CPU (vectorised too, differently: see there).
 *
 * Plain C11 + GCC vector extensions + pthreads; no torch headers, so it compiles in a few
 * seconds. Compiled and loaded lazily by sdr_core/attention/native.py (ctypes).
 *
 * Maths (see fast.py): for query pixel p and window element t (pixel p_t)
 *     logit = m(p_t) * (T0[p,t] + d(p) alpha(p_t) + d(p_t) beta(p) + gamma d(p) d(p_t))
 *             + bias(p_t - p)
 *     a = softmax_t(logit); refined(p) = sum_t a_t d(p_t); next_mask(p) = sum_t a_t m(p_t)
 * with T0[p,t] = q0(p).k0(p_t), alpha = u_q.k0, beta = q0.u_k, gamma = u_q.u_k.
 *
 * Vectorisation runs across V (16 with AVX-512, else 8: see V below) horizontally adjacent
 * query pixels (one "chunk"), one vector per window element t. For a chunk away from the
 * left/right border the window element t of the V pixels is V adjacent image pixels, so every
 * operand is a plain (unaligned) vector load. Border chunks (NATTEN rule: windows shift
 * inward) use one load plus a lane permutation; images narrower than V pixels (or windows
 * wider than 15) use a per-lane gather. T0 is stored blocked, B x H x ceil(W/V) x p^2 x V, so
 * a chunk reads its p^2 x V logits contiguously.
 *
 * Threads: tasks (image rows, row tiles) are handed out dynamically through an atomic counter
 * to nthreads pthreads (the caller participates); no OpenMP runtime, so nothing spins after a
 * call and nothing interferes with torch's own thread pool. Each output element is computed
 * by exactly one task, so results do not depend on the thread count.
 *
 * Built without -ffast-math on purpose: with gcc < 13 a -ffast-math shared library links
 * crtfastmath.o, which turns on flush-to-zero for the whole process when loaded.
 */

#include <pthread.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#define MSPN_NATIVE_ABI 3

/*
 * V, the lanes of one vector: one register's worth of floats. 16 (512 bits) with AVX-512;
 * 8 (256 bits) elsewhere, since GCC keeps a vector wider than the machine's registers in
 * memory and moves it through the stack at every operation (measured on an AVX2 CPU, Zen 3:
 * with 16 lanes one attention iteration took 53 ms, single-threaded). MSPN_LANES (8 or 16)
 * overrides the choice, so that either build can be tested on any CPU.
 */
#if defined(MSPN_LANES)
#define V MSPN_LANES
#elif defined(__AVX512F__)
#define V 16
#else
#define V 8
#endif
#if V != 8 && V != 16
#error "MSPN_LANES must be 8 or 16"
#endif
/* one vf is one register: AVX-512 (any V), or AVX with 8 lanes */
#if defined(__AVX512F__) || (defined(__AVX__) && V == 8)
#define VF_IN_ONE_REGISTER 1
#endif
/* vector registers: what guide_block's register blocking may fill */
#if defined(__AVX512F__)
#define VREGS 32
#else
#define VREGS 16
#endif

typedef float vf __attribute__((vector_size(4 * V)));
typedef float vfu __attribute__((vector_size(4 * V), aligned(4)));
typedef int32_t vi __attribute__((vector_size(4 * V)));
typedef uint32_t vu __attribute__((vector_size(4 * V)));

#define INLINE static inline __attribute__((always_inline))

INLINE vf loadu(const float *p) { return *(const vfu *)p; }
INLINE void storeu(float *p, vf v) { *(vfu *)p = v; }
INLINE vf splat(float x) { return (vf){0} + x; }

/* x in every lane (splat computes 0 + x, which without -ffast-math costs an add). */
INLINE vf bcast(float x) {
    vf v;
    for (int l = 0; l < V; ++l) v[l] = x;
    return v;
}

/* 0, 1, ..., V - 1 */
INLINE vi lane_index(void) {
    vi v;
    for (int l = 0; l < V; ++l) v[l] = l;
    return v;
}

INLINE vf vmax(vf a, vf b) {
#if defined(__AVX512F__) && V == 16
    return (vf)_mm512_max_ps((__m512)a, (__m512)b);
#elif defined(__AVX__) && V == 8
    return (vf)_mm256_max_ps((__m256)a, (__m256)b);
#else
    vi m = a > b;
    return (vf)((m & (vi)a) | (~m & (vi)b));
#endif
}

/* out[l] = v[idx[l]], idx in [0, V). */
INLINE vf permute1(vf v, vi idx) {
#if defined(__AVX512F__) && V == 16
    return (vf)_mm512_permutexvar_ps((__m512i)idx, (__m512)v);
#elif defined(__AVX2__) && V == 8
    return (vf)_mm256_permutevar8x32_ps((__m256)v, (__m256i)idx);
#elif defined(__GNUC__) && !defined(__clang__)
    return __builtin_shuffle(v, idx);
#else
    vf out;
    for (int l = 0; l < V; ++l) out[l] = v[idx[l] & (V - 1)];
    return out;
#endif
}

/* out[l] = concat(lo, hi)[idx[l]], idx in [0, 2V). */
INLINE vf permute2(vf lo, vf hi, vi idx) {
#if defined(__AVX512F__) && V == 16
    return (vf)_mm512_permutex2var_ps((__m512)lo, (__m512i)idx, (__m512)hi);
#elif defined(__AVX2__) && V == 8
    const __m256 from_lo = _mm256_permutevar8x32_ps((__m256)lo, (__m256i)idx);
    const __m256 from_hi = _mm256_permutevar8x32_ps((__m256)hi, (__m256i)idx);
    return (vf)_mm256_blendv_ps(from_lo, from_hi, (__m256)(idx << 28)); /* bit 3: hi */
#elif defined(__GNUC__) && !defined(__clang__)
    return __builtin_shuffle(lo, hi, idx);
#else
    vf out;
    for (int l = 0; l < V; ++l) {
        int k = idx[l] & (2 * V - 1);
        out[l] = k < V ? lo[k] : hi[k - V];
    }
    return out;
#endif
}

/*
 * exp(x) for x <= 0 (softmax after subtracting the max). Cody-Waite reduction
 * x = n ln2 + r, |r| <= ln2/2, the Cephes degree-6 minimax polynomial, 2^n assembled in the
 * exponent bits. Arguments below -87 are clamped (exp(-87) ~ 1.6e-38, still normal), which
 * is invisible next to the max term exp(0) = 1. Measured max relative error 8.2e-8 (1.4 ulp)
 * on [-87, 0]. NaN propagates (so NaN inputs give NaN outputs, as in torch).
 */
INLINE vf vexp_nonpos(vf x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = vmax(splat(-87.0f), x); /* this operand order lets a NaN through */
    vf t = x * 1.44269504088896341f + magic;
    vf n = t - magic;
    vf r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    vf y = r * 1.9875691500e-4f + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * (r * r) + r + 1.0f;
    vu bits = ((vu)t << 23) + 0x3f800000u; /* (n + 127) << 23 */
    return y * (vf)bits;
}

/*
 * exp(x) for any x, by the same reduction, which holds for x up to 88 (2^n stays a normal
 * float for n <= 127): arguments are clamped to [-87, 88], so the result is always finite
 * (torch gives inf past 88.7; no depth ratio comes near that). Maps log ratios to metres.
 */
INLINE vf vexp_any(vf x) {
    vf hi = splat(88.0f);
    vi over = x > hi;
    x = (vf)((over & (vi)hi) | (~over & (vi)x)); /* min(x, 88) letting NaN through */
    return vexp_nonpos(x);
}

/* where(sel, a, b) lane by lane; sel holds 1.0 or 0.0. */
INLINE vf select_set(vf sel, vf a, vf b) {
    vi m = sel > 0.5f;
    return (vf)((m & (vi)a) | (~m & (vi)b));
}

/* --------------------------------------------------------------------------------------- */
/* Chunk geometry                                                                          */
/* --------------------------------------------------------------------------------------- */

enum { MODE_INTERIOR = 0, MODE_PERMUTE = 1, MODE_GATHER = 2 };

typedef struct {
    int mode;
    int64_t j0;   /* first query column of the chunk */
    int64_t cs0;  /* window start column of lane 0 */
    int64_t qbase;
    int nvalid;   /* lanes with j0 + l < W */
    vi cs;        /* per-lane window start column (dead lanes: last valid lane's) */
    vi jq;        /* per-lane query column, clamped to W - 1 */
    vi qidx;      /* MODE_PERMUTE: jq - qbase */
    vi bidx;      /* per-lane bias column of window column 0: cs - jq + p - 1 */
} chunk_t;

static inline int64_t clamp64(int64_t x, int64_t lo, int64_t hi) {
    return x < lo ? lo : (x > hi ? hi : x);
}

static void chunk_setup(chunk_t *c, int64_t j0, int64_t W, int64_t p) {
    const int64_t r = p / 2;
    c->j0 = j0;
    c->nvalid = (int)(W - j0 < V ? W - j0 : V);
    for (int l = 0; l < V; ++l) {
        int64_t j = j0 + l < W ? j0 + l : W - 1;
        int64_t s = clamp64(j - r, 0, W - p);
        c->jq[l] = (int32_t)j;
        c->cs[l] = (int32_t)s;
        c->bidx[l] = (int32_t)(s - j + p - 1);
    }
    c->cs0 = c->cs[0];
    c->qbase = W >= V ? (j0 < W - V ? j0 : W - V) : 0;
    c->qidx = c->jq - (int32_t)c->qbase;
    if (j0 >= r && j0 + V - 1 + r <= W - 1)
        c->mode = MODE_INTERIOR;
    else if (W >= V && p <= 15)
        c->mode = MODE_PERMUTE;
    else
        c->mode = MODE_GATHER;
}

/* Geometry of every chunk of a row (64-byte aligned array, free() it). */
static chunk_t *make_chunks(int64_t W, int64_t p) {
    const int64_t nc = (W + V - 1) / V;
    chunk_t *chunks = (chunk_t *)aligned_alloc(64, (size_t)nc * sizeof(chunk_t));
    if (chunks)
        for (int64_t ch = 0; ch < nc; ++ch) chunk_setup(&chunks[ch], ch * V, W, p);
    return chunks;
}

/* Window element (window column kx) of every lane, from image row `row` (W floats). */
INLINE vf load_window(const chunk_t *c, int mode, const float *row, int64_t kx, int64_t W) {
    if (mode == MODE_INTERIOR) return loadu(row + c->cs0 + kx);
    if (mode == MODE_PERMUTE) {
        int64_t base = c->cs0 + kx < W - V ? c->cs0 + kx : W - V;
        return permute1(loadu(row + base), c->cs + (int32_t)(kx - base));
    }
    vf out;
    for (int l = 0; l < V; ++l) out[l] = row[c->cs[l] + kx];
    return out;
}

/* The query pixel's own value of every lane, from image row `row`. */
INLINE vf load_query(const chunk_t *c, int mode, const float *row) {
    if (mode == MODE_INTERIOR) return loadu(row + c->j0);
    if (mode == MODE_PERMUTE) return permute1(loadu(row + c->qbase), c->qidx);
    vf out;
    for (int l = 0; l < V; ++l) out[l] = row[c->jq[l]];
    return out;
}

/* Bias of window column kx; brow is one bias row of 2p - 1 floats, padded to 2V. */
INLINE vf load_bias(const chunk_t *c, int mode, const float *brow, int64_t kx, int64_t r) {
    if (mode == MODE_INTERIOR) return splat(brow[kx + r]);
    if (mode == MODE_PERMUTE && 2 * r + 1 <= V) /* the 2p - 1 bias columns fit 2V lanes */
        return permute2(loadu(brow), loadu(brow + V), c->bidx + (int32_t)kx);
    vf out;
    for (int l = 0; l < V; ++l) out[l] = brow[c->bidx[l] + kx];
    return out;
}

static inline void store_query(const chunk_t *c, float *row, vf v) {
    if (c->nvalid == V) {
        storeu(row + c->j0, v);
    } else {
        for (int l = 0; l < c->nvalid; ++l) row[c->j0 + l] = v[l];
    }
}

/* --------------------------------------------------------------------------------------- */
/* Row-parallel runner                                                                     */
/* --------------------------------------------------------------------------------------- */

typedef int (*row_fn)(void *ctx, int64_t row, float *scratch);

typedef struct {
    row_fn fn;
    void *ctx;
    int64_t nrows;
    int64_t next; /* atomic */
    int error;    /* atomic */
    size_t scratch_floats;
} pool_t;

static void *pool_worker(void *arg) {
    pool_t *pool = (pool_t *)arg;
    float *scratch = NULL;
    if (pool->scratch_floats) {
        scratch = (float *)aligned_alloc(64, ((pool->scratch_floats * sizeof(float) + 63) / 64) * 64);
        if (!scratch) {
            __atomic_store_n(&pool->error, 2, __ATOMIC_RELAXED);
            return NULL;
        }
    }
    for (;;) {
        int64_t row = __atomic_fetch_add(&pool->next, 1, __ATOMIC_RELAXED);
        if (row >= pool->nrows) break;
        int err = pool->fn(pool->ctx, row, scratch);
        if (err) __atomic_store_n(&pool->error, err, __ATOMIC_RELAXED);
    }
    free(scratch);
    return NULL;
}

static int run_rows(row_fn fn, void *ctx, int64_t nrows, size_t scratch_floats, int nthreads) {
    pool_t pool = {fn, ctx, nrows, 0, 0, scratch_floats};
    if (nthreads < 1) nthreads = 1;
    if (nthreads > 256) nthreads = 256;
    if (nthreads > nrows) nthreads = (int)(nrows > 0 ? nrows : 1);
    pthread_t threads[256];
    int started = 0;
    for (int k = 1; k < nthreads; ++k) {
        if (pthread_create(&threads[started], NULL, pool_worker, &pool) != 0) break;
        ++started;
    }
    pool_worker(&pool); /* the caller works too; rows left by failed creates are covered */
    for (int k = 0; k < started; ++k) pthread_join(threads[k], NULL);
    return pool.error;
}

/* --------------------------------------------------------------------------------------- */
/* Guidance term: T0 (blocked), alpha, beta                                                */
/* --------------------------------------------------------------------------------------- */

/*
 * T0[p, t] = q0(p) . k0(p_t) is a banded correlation: for a chunk of V query pixels and
 * window column kx the V keys are (for interior chunks) V adjacent pixels, so
 *     T0[kx][l] = sum_e Q[e][j0 + l] * K[e][R][j0 - r + kx + l].
 * Reading the E channel planes directly in that loop walks E pages per step and is cache-
 * and TLB-miss bound, so the work runs in blocks of BAND query rows x STRIP chunks, each in
 * two parallel phases:
 *   1. pack: every key row R the block needs is cut into per-chunk blocks KC[R][chunk][e][pw]
 *      (the p + V - 1 key columns a chunk touches, all channels, contiguous) and every query
 *      row into QC[i][chunk][e][V] (the chunk's query vectors); each plane row segment is read
 *      once, sequentially (alpha and beta are accumulated on the way).
 *   2. correlate: tiles of TILE query rows; for each key row and chunk the 8 KB KC block
 *      serves every query row of the tile whose window contains R, up to four rows at a time
 *      so that each key vector load feeds four FMAs.
 * Images narrower than p + V - 1 columns (or windows wider than 15) take a direct, unpacked,
 * one-row-at-a-time path.
 */

#define TILE 8
#define BAND 32
#define STRIP 16

typedef struct {
    const float *q0, *k0, *uq, *uk;
    int64_t B, E, H, W, p, nchunks;
    int64_t sb, se, sy;   /* element strides of q0/k0 for batch, channel, row (column: 1) */
    int64_t pw;           /* packed key block width: p + V - 1 rounded up to V */
    float *t0;            /* B x H x nchunks x p^2 x V */
    float *alpha, *beta;  /* B x H x W */
    const chunk_t *chunks; /* geometry of every chunk (nchunks) */
    /* current block (packed path): image b, query rows [i0, i1), chunks [ch_lo, ch_hi) */
    int64_t b, i0, i1, R0, R1, ch_lo, ch_hi;
    float *kc;            /* (R1 - R0) x (ch_hi - ch_lo) x E x pw */
    float *qc;            /* (i1 - i0) x (ch_hi - ch_lo) x E x V */
} guide_ctx;

/*
 * Output window columns kx0 .. kx0+KB-1 of NR query rows (same chunk, same key row): each
 * key vector load feeds NR FMAs. NR * KB accumulators + NR query vectors fit the VREGS
 * registers for the (NR, KB) pairs guide_keyrow uses.
 */
INLINE void guide_block(const guide_ctx *g, const chunk_t *c, int mode, const vf *const *q,
                        const float *krow0, int64_t kstride, int64_t kx0, int KB, int NR,
                        float *const *o) {
    vf acc[4][8];
    for (int r = 0; r < NR; ++r)
        for (int k = 0; k < KB; ++k) acc[r][k] = splat(0.0f);
    for (int64_t e = 0; e < g->E; ++e) {
        const float *krow = krow0 + e * kstride;
        vf qe[4];
        for (int r = 0; r < NR; ++r) qe[r] = q[r][e];
        for (int k = 0; k < KB; ++k) {
            const vf kv = load_window(c, mode, krow, kx0 + k, g->W);
            for (int r = 0; r < NR; ++r) acc[r][k] += qe[r] * kv;
        }
    }
    for (int r = 0; r < NR; ++r)
        for (int k = 0; k < KB; ++k) storeu(o[r] + (kx0 + k) * V, acc[r][k]);
}

/* Query rows per key load on the packed path (1..4): 4 with 32 registers, 2 with 16 (whose
 * column blocks, below, are then 6 wide rather than 2: measured 15 % faster on Zen 3). */
#ifndef GUIDE_ROWS
#define GUIDE_ROWS (VREGS >= 32 ? 4 : 2)
#endif

/* The widest column block for NR rows: NR * KB + NR + 2 <= VREGS registers. */
#if VREGS >= 32
#define MAX_KB(NR) ((NR) <= 2 ? 8 : (NR) == 3 ? 7 : 6)
#else
#define MAX_KB(NR) ((NR) == 1 ? 8 : (NR) == 2 ? 6 : (NR) == 3 ? 3 : 2)
#endif

/* All p window columns of one key row for NR (1..4) query rows. */
INLINE void guide_keyrow_n(const guide_ctx *g, const chunk_t *c, int mode, const vf *const *q,
                           const float *krow0, int64_t kstride, float *const *o, int NR) {
    const int64_t p = g->p, maxkb = MAX_KB(NR);
    const int64_t nblocks = (p + maxkb - 1) / maxkb;
    int64_t kx = 0;
    for (int64_t blk = 0; blk < nblocks; ++blk) {
        const int KB = (int)(p / nblocks + (blk < p % nblocks ? 1 : 0));
        /* constant KB per call so the accumulators live in registers */
        switch (KB) {
#define GUIDE_CASE(n) \
    case n: guide_block(g, c, mode, q, krow0, kstride, kx, n <= MAX_KB(NR) ? n : 1, NR, o); break;
            GUIDE_CASE(1) GUIDE_CASE(2) GUIDE_CASE(3) GUIDE_CASE(4)
            GUIDE_CASE(5) GUIDE_CASE(6) GUIDE_CASE(7) GUIDE_CASE(8)
#undef GUIDE_CASE
        }
        kx += KB;
    }
}

INLINE void guide_keyrow(const guide_ctx *g, const chunk_t *c, int mode, const vf *const *q,
                         const float *krow0, int64_t kstride, float *const *o, int nr) {
    switch (nr) {
        case 4: guide_keyrow_n(g, c, mode, q, krow0, kstride, o, 4); break;
        case 3: guide_keyrow_n(g, c, mode, q, krow0, kstride, o, 3); break;
        case 2: guide_keyrow_n(g, c, mode, q, krow0, kstride, o, 2); break;
        default: guide_keyrow_n(g, c, mode, q, krow0, kstride, o, 1); break;
    }
}

static inline int64_t row_start(int64_t i, int64_t H, int64_t p) {
    return clamp64(i - p / 2, 0, H - p);
}

/* First key column of the packed block of a chunk (every load of the chunk lies inside). */
static inline int64_t pack_base(const chunk_t *c, int64_t W, int64_t pw) {
    int64_t lo = c->cs0;
    if (c->mode == MODE_PERMUTE && W - V < lo) lo = W - V;
    return lo < W - pw ? lo : W - pw;
}

/*
 * Query rows [i0, i1) of image b, one chunk. kblock(R) / qvec(i) locate the key data and the
 * query vectors: packed blocks (packed != 0) or the planes themselves.
 */
INLINE void guide_rows_chunk(const guide_ctx *g, const chunk_t *c, int mode, int packed,
                             int64_t b, int64_t i0, int64_t i1, int64_t R0, int64_t R1,
                             vf *qv_scratch) {
    const int64_t E = g->E, H = g->H, p = g->p, P2 = p * p, nc = g->nchunks;
    const int64_t ch = c->j0 / V;
    const int64_t pb = packed ? pack_base(c, g->W, g->pw) : 0;
    const vf *qv;
    int64_t qstride;
    if (packed) {
        const int64_t ncs = g->ch_hi - g->ch_lo;
        qv = (const vf *)(g->qc + ((i0 - g->i0) * ncs + ch - g->ch_lo) * E * V);
        qstride = ncs * E;
    } else {
        for (int64_t i = i0; i < i1; ++i) {
            const float *qrow = g->q0 + b * g->sb + i * g->sy;
            for (int64_t e = 0; e < E; ++e)
                qv_scratch[(i - i0) * E + e] = load_query(c, mode, qrow + e * g->se);
        }
        qv = qv_scratch;
        qstride = E;
    }
    for (int64_t R = R0; R < R1; ++R) {
        const float *krow0;
        int64_t kstride;
        if (packed) {
            const int64_t ncs = g->ch_hi - g->ch_lo;
            krow0 = g->kc + ((R - g->R0) * ncs + ch - g->ch_lo) * E * g->pw - pb;
            kstride = g->pw;
        } else {
            krow0 = g->k0 + b * g->sb + R * g->sy;
            kstride = g->se;
        }
        /* query rows whose window contains key row R: a contiguous range */
        int64_t ia = i0;
        while (ia < i1 && row_start(ia, H, p) + p <= R) ++ia;
        int64_t ib = ia;
        while (ib < i1 && row_start(ib, H, p) <= R) ++ib;
        /* several rows per key load on the packed (hot) path; one on the rare direct path,
         * which keeps the number of specialisations and the compile time down */
        const int64_t rows_per_pass = packed ? GUIDE_ROWS : 1;
        for (int64_t i = ia; i < ib; i += rows_per_pass) {
            const int nr = (int)(ib - i < rows_per_pass ? ib - i : rows_per_pass);
            const vf *q[4];
            float *o[4];
            for (int r = 0; r < nr; ++r) {
                const int64_t ky = R - row_start(i + r, H, p);
                q[r] = qv + (i + r - i0) * qstride;
                o[r] = g->t0 + ((b * H + i + r) * nc + ch) * P2 * V + ky * p * V;
            }
            guide_keyrow(g, c, mode, q, krow0, kstride, o, nr);
        }
    }
}

static void guide_alpha_beta(const guide_ctx *g, int64_t b, int64_t i) {
    const int64_t W = g->W;
    float *arow = g->alpha + (b * g->H + i) * W;
    float *brow = g->beta + (b * g->H + i) * W;
    for (int64_t j = 0; j < W; ++j) arow[j] = brow[j] = 0.0f;
    for (int64_t e = 0; e < g->E; ++e) {
        const float *krow = g->k0 + b * g->sb + e * g->se + i * g->sy;
        const float *qrow = g->q0 + b * g->sb + e * g->se + i * g->sy;
        const float uq = g->uq[e], uk = g->uk[e];
        for (int64_t j = 0; j < W; ++j) {
            arow[j] += uq * krow[j];
            brow[j] += uk * qrow[j];
        }
    }
}

/*
 * Phase 1 task: pack key row R0 + task (task < R1 - R0) and compute its alpha, else pack
 * query row i0 + task - (R1 - R0) and compute its beta, for the block's chunks [ch_lo, ch_hi)
 * (alpha and beta for the columns of those chunks). Each plane row segment is read once.
 */
static int guide_pack(void *vctx, int64_t task, float *scratch) {
    const guide_ctx *g = (const guide_ctx *)vctx;
    const int64_t E = g->E, W = g->W, pw = g->pw, ncs = g->ch_hi - g->ch_lo;
    (void)scratch;
    const int is_key = task < g->R1 - g->R0;
    const int64_t k = is_key ? task : task - (g->R1 - g->R0);
    const int64_t i = is_key ? g->R0 + k : g->i0 + k;
    const float *base = (is_key ? g->k0 : g->q0) + g->b * g->sb + i * g->sy;
    const float *u = is_key ? g->uq : g->uk;
    float *sum = (is_key ? g->alpha : g->beta) + (g->b * g->H + i) * W;
    const int64_t j0 = g->ch_lo * V, j1 = g->ch_hi * V < W ? g->ch_hi * V : W;
    for (int64_t j = j0; j < j1; ++j) sum[j] = 0.0f;
    for (int64_t e = 0; e < E; ++e) {
        const float *src = base + e * g->se;
        const float ue = u[e];
        if (e + 1 < E) /* the next plane's row: a new page the prefetchers would not enter */
            for (int64_t j = j0; j < j1; j += V) __builtin_prefetch(src + g->se + j);
        for (int64_t j = j0; j < j1; ++j) sum[j] += ue * src[j];
        for (int64_t ch = g->ch_lo; ch < g->ch_hi; ++ch) {
            const chunk_t *c = &g->chunks[ch];
            if (is_key) {
                float *dst = g->kc + (k * ncs + ch - g->ch_lo) * E * pw + e * pw;
                const float *from = src + pack_base(c, W, pw);
                for (int64_t x = 0; x < pw; x += V) storeu(dst + x, loadu(from + x));
            } else {
                float *dst = g->qc + ((k * ncs + ch - g->ch_lo) * E + e) * V;
                storeu(dst, c->mode == MODE_INTERIOR ? load_query(c, MODE_INTERIOR, src)
                                                     : load_query(c, MODE_PERMUTE, src));
            }
        }
    }
    return 0;
}

/*
 * Phase 2 task (packed path): one tile of TILE query rows of the current block. Key-row
 * outer, chunk inner: a key row's blocks stream through once, contiguously, while the tile's
 * query blocks (TILE x STRIP x 4 KB for E = 64) stay in L2.
 */
static int guide_tile_packed(void *vctx, int64_t tile, float *scratch) {
    const guide_ctx *g = (const guide_ctx *)vctx;
    const int64_t H = g->H, p = g->p;
    const int64_t i0 = g->i0 + tile * TILE;
    const int64_t i1 = i0 + TILE < g->i1 ? i0 + TILE : g->i1;
    (void)scratch;
    const int64_t R0 = row_start(i0, H, p), R1 = row_start(i1 - 1, H, p) + p;
    for (int64_t R = R0; R < R1; ++R) {
        for (int64_t ch = g->ch_lo; ch < g->ch_hi; ++ch) {
            const chunk_t *c = &g->chunks[ch];
            if (c->mode == MODE_INTERIOR)
                guide_rows_chunk(g, c, MODE_INTERIOR, 1, g->b, i0, i1, R, R + 1, NULL);
            else
                guide_rows_chunk(g, c, MODE_PERMUTE, 1, g->b, i0, i1, R, R + 1, NULL);
        }
    }
    return 0;
}

/* Direct path (narrow images): one tile of TILE query rows, reading the planes. */
static int guide_tile_direct(void *vctx, int64_t tile, float *scratch) {
    const guide_ctx *g = (const guide_ctx *)vctx;
    const int64_t H = g->H, tiles_per_image = (H + TILE - 1) / TILE;
    const int64_t b = tile / tiles_per_image;
    const int64_t i0 = (tile % tiles_per_image) * TILE;
    const int64_t i1 = i0 + TILE < H ? i0 + TILE : H;
    const int64_t R0 = row_start(i0, H, g->p), R1 = row_start(i1 - 1, H, g->p) + g->p;
    for (int64_t ch = 0; ch < g->nchunks; ++ch) {
        const chunk_t *c = &g->chunks[ch];
        vf *qv = (vf *)scratch;
        if (c->mode == MODE_INTERIOR)
            guide_rows_chunk(g, c, MODE_INTERIOR, 0, b, i0, i1, R0, R1, qv);
        else if (c->mode == MODE_PERMUTE)
            guide_rows_chunk(g, c, MODE_PERMUTE, 0, b, i0, i1, R0, R1, qv);
        else
            guide_rows_chunk(g, c, MODE_GATHER, 0, b, i0, i1, R0, R1, qv);
    }
    for (int64_t i = i0; i < i1; ++i) guide_alpha_beta(g, b, i);
    return 0;
}

/* --------------------------------------------------------------------------------------- */
/* Attend: one fused pass per chunk                                                        */
/* --------------------------------------------------------------------------------------- */

typedef struct {
    const float *t0, *alpha, *beta, *depth, *mask;
    const float *biasp; /* (2p-1) rows padded to 2V floats or to 2p-1 */
    int64_t bstride;
    float gamma;
    int64_t B, H, W, p, nchunks;
    float *refined, *next_mask;
    const chunk_t *chunks;
    /* iterate mode (target != NULL): eq. 10 and S kept at measured pixels, in the kernel;
     * refined/next_mask then receive D_{n+1}/M_{n+1}. measured is 1.0/0.0. With init != NULL
     * the values are log ratios and metres = where(measured, sparse, init * exp(D_{n+1})). */
    const float *target, *measured, *init, *sparse;
    float *metres;
    /* iterate mode: reach[(b H + R) (W + 1) + j] counts the nonzero mask values among the
     * first j pixels of row R, so a window's count is p differences */
    const int32_t *reach;
} attend_ctx;

/* Eq. 10 with S kept at measured pixels (iterate mode), and the metres, for one chunk. */
INLINE void finish_iteration(const attend_ctx *a, const chunk_t *c, int mode, int64_t q, vf dq,
                             vf refined, vf grown) {
    const vf mq = load_query(c, mode, a->mask + q);
    const vf meas = load_query(c, mode, a->measured + q);
    const vf tq = load_query(c, mode, a->target + q);
    const vf next = select_set(meas, tq, (1.0f - mq) * dq + mq * refined); /* eq. 10 */
    store_query(c, a->refined + q, next);
    store_query(c, a->next_mask + q, select_set(meas, mq, grown));
    if (a->init) {
        const vf metres = load_query(c, mode, a->init + q) * vexp_any(next);
        store_query(c, a->metres + q, select_set(meas, load_query(c, mode, a->sparse + q), metres));
    }
}

/* Whether every mask value in the chunk's windows (rows rs.., its lanes' columns) is 0. */
INLINE int chunk_unreached(const attend_ctx *a, const chunk_t *c, int64_t b, int64_t rs) {
    const int64_t lo = c->cs[0], hi = c->cs[V - 1] + a->p; /* dead lanes repeat the last */
    const int32_t *row = a->reach + (b * a->H + rs) * (a->W + 1);
    int64_t count = 0;
    for (int64_t ky = 0; ky < a->p; ++ky, row += a->W + 1) count += row[hi] - row[lo];
    return count == 0;
}

INLINE void attend_chunk(const attend_ctx *a, const chunk_t *c, int mode, int64_t b, int64_t i,
                         float *scratch) {
    const int64_t H = a->H, W = a->W, p = a->p, P2 = p * p, r = p / 2;
    float *lbuf = scratch, *dbuf = scratch + P2 * V, *mbuf = scratch + 2 * P2 * V;
    const int64_t img = b * H * W;
    const float *t0 = a->t0 + ((b * H + i) * a->nchunks + c->j0 / V) * P2 * V;
    const vf dq = load_query(c, mode, a->depth + img + i * W);
    const int64_t rs = clamp64(i - r, 0, H - p);
    if (a->reach && chunk_unreached(a, c, b, rs)) {
        /* No key reached: every m(p_t) = 0, so m = 0 and, with M(p) = 0, D' = D~ whatever R
         * is (eq. 10): the result of the full computation, exactly, for finite depths. */
        finish_iteration(a, c, mode, img + i * W, dq, dq, splat(0.0f));
        return;
    }
    const vf bq = load_query(c, mode, a->beta + img + i * W) + a->gamma * dq;

    vf mx = splat(-3.0e38f);
    for (int64_t ky = 0; ky < p; ++ky) {
        const int64_t R = rs + ky;
        const float *drow = a->depth + img + R * W;
        const float *mrow = a->mask + img + R * W;
        const float *arow = a->alpha + img + R * W;
        const float *brow = a->biasp + (R - i + p - 1) * a->bstride;
        for (int64_t kx = 0; kx < p; ++kx) {
            const int64_t t = ky * p + kx;
            vf dt = load_window(c, mode, drow, kx, W);
            vf mt = load_window(c, mode, mrow, kx, W);
            vf at = load_window(c, mode, arow, kx, W);
            vf bt = load_bias(c, mode, brow, kx, r);
            vf x = loadu(t0 + t * V) + dq * at + dt * bq;
            vf logit = mt * x + bt;
            storeu(lbuf + t * V, logit);
            storeu(dbuf + t * V, dt);
            storeu(mbuf + t * V, mt);
            mx = vmax(mx, logit);
        }
    }
    vf s0 = splat(0.0f), sd0 = s0, sm0 = s0, s1 = s0, sd1 = s0, sm1 = s0;
    int64_t t = 0;
    for (; t + 2 <= P2; t += 2) {
        vf e0 = vexp_nonpos(loadu(lbuf + t * V) - mx);
        vf e1 = vexp_nonpos(loadu(lbuf + (t + 1) * V) - mx);
        s0 += e0;
        s1 += e1;
        sd0 += e0 * loadu(dbuf + t * V);
        sd1 += e1 * loadu(dbuf + (t + 1) * V);
        sm0 += e0 * loadu(mbuf + t * V);
        sm1 += e1 * loadu(mbuf + (t + 1) * V);
    }
    if (t < P2) {
        vf e0 = vexp_nonpos(loadu(lbuf + t * V) - mx);
        s0 += e0;
        sd0 += e0 * loadu(dbuf + t * V);
        sm0 += e0 * loadu(mbuf + t * V);
    }
    const vf inv = 1.0f / (s0 + s1);
    const vf refined = (sd0 + sd1) * inv, grown = (sm0 + sm1) * inv;
    const int64_t q = img + i * W;
    if (a->target) {
        finish_iteration(a, c, mode, q, dq, refined, grown);
        return;
    }
    store_query(c, a->refined + q, refined);
    store_query(c, a->next_mask + q, grown);
}

static int attend_row(void *vctx, int64_t row, float *scratch) {
    const attend_ctx *a = (const attend_ctx *)vctx;
    const int64_t b = row / a->H, i = row % a->H;
    for (int64_t ch = 0; ch < a->nchunks; ++ch) {
        const chunk_t *c = &a->chunks[ch];
        if (c->mode == MODE_INTERIOR)
            attend_chunk(a, c, MODE_INTERIOR, b, i, scratch);
        else if (c->mode == MODE_PERMUTE)
            attend_chunk(a, c, MODE_PERMUTE, b, i, scratch);
        else
            attend_chunk(a, c, MODE_GATHER, b, i, scratch);
    }
    return 0;
}

/* --------------------------------------------------------------------------------------- */
/* Entry points (ctypes). Return 0 on success, 1 on bad arguments, 2 when out of memory.   */
/* --------------------------------------------------------------------------------------- */

int mspn_native_abi(void) { return MSPN_NATIVE_ABI; }

/*
 * Ask for transparent huge pages on the 2 MiB-aligned part of a fresh, untouched buffer
 * (Linux, THP in "madvise" mode): first touch then costs one fault per 2 MiB instead of one
 * per 4 KiB. Advice only; returns 0 when applied, 1 when not applicable.
 */
int mspn_advise_hugepages(void *ptr, int64_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)2 << 20;
    uintptr_t lo = ((uintptr_t)ptr + huge - 1) & ~(huge - 1);
    uintptr_t hi = ((uintptr_t)ptr + (uintptr_t)bytes) & ~(huge - 1);
    if (hi <= lo) return 1;
    return madvise((void *)lo, hi - lo, MADV_HUGEPAGE) == 0 ? 0 : 1;
#else
    (void)ptr;
    (void)bytes;
    return 1;
#endif
}

int mspn_native_lanes(void) { return V; }

int mspn_guidance(const float *q0, const float *k0, const float *uq, const float *uk,
                  int64_t B, int64_t E, int64_t H, int64_t W, int64_t p, int rows_outer,
                  float *t0, float *alpha, float *beta, int nthreads) {
    if (B < 1 || E < 1 || p < 1 || p % 2 == 0 || H < p || W < p) return 1;
    /* rows_outer: q0/k0 are B x H x E x W (else B x E x H x W) */
    const int64_t se = rows_outer ? W : H * W, sy = rows_outer ? E * W : W;
    const int64_t pw = (p + V - 1 + V - 1) / V * V; /* p + V - 1 columns, in vectors */
    const int64_t nc = (W + V - 1) / V;
    chunk_t *chunks = make_chunks(W, p);
    if (!chunks) return 2;
    guide_ctx g = {q0, k0, uq, uk, B, E, H, W, p, nc, E * H * W, se, sy, pw, t0, alpha, beta,
                   chunks, 0, 0, 0, 0, 0, 0, 0, NULL, NULL};
    /* packed path: every chunk is interior or permute mode and its block fits in the row */
    if (W < pw || W < V || p > 15) {
        const int64_t tiles = B * ((H + TILE - 1) / TILE);
        int err = run_rows(guide_tile_direct, &g, tiles, (size_t)(TILE * E * V), nthreads);
        free(chunks);
        return err;
    }
    /*
     * Blocks of BAND query rows x STRIP chunks: their packed keys (BAND + p - 1 rows) and
     * queries stay cache-sized (7.5 MB for E = 64, p = 13) whatever the image width.
     */
    const int64_t band = BAND < H ? BAND : H;
    const int64_t key_rows = band + p - 1 < H ? band + p - 1 : H;
    const int64_t nstrips = (nc + STRIP - 1) / STRIP, strip = (nc + nstrips - 1) / nstrips;
    const size_t kc_floats = (size_t)key_rows * strip * E * pw;
    const size_t qc_floats = (size_t)band * strip * E * V;
    float *buf = (float *)aligned_alloc(64, (kc_floats + qc_floats) * sizeof(float));
    if (!buf) {
        free(chunks);
        return 2;
    }
    g.kc = buf;
    g.qc = buf + kc_floats;
    int err = 0;
    for (int64_t b = 0; b < B && !err; ++b) {
        for (int64_t ch = 0; ch < nc && !err; ch += strip) {
            for (int64_t i0 = 0; i0 < H && !err; i0 += band) {
                g.b = b;
                g.ch_lo = ch;
                g.ch_hi = ch + strip < nc ? ch + strip : nc;
                g.i0 = i0;
                g.i1 = i0 + band < H ? i0 + band : H;
                g.R0 = row_start(g.i0, H, p);
                g.R1 = row_start(g.i1 - 1, H, p) + p;
                err = run_rows(guide_pack, &g, (g.R1 - g.R0) + (g.i1 - g.i0), 0, nthreads);
                if (!err)
                    err = run_rows(guide_tile_packed, &g, (g.i1 - g.i0 + TILE - 1) / TILE, 0,
                                   nthreads);
            }
        }
    }
    free(buf);
    free(chunks);
    return err;
}

int mspn_attend(const float *t0, const float *alpha, const float *beta, float gamma,
                const float *depth, const float *mask, const float *bias, int64_t B, int64_t H,
                int64_t W, int64_t p, float *refined, float *next_mask, int nthreads) {
    if (B < 1 || p < 1 || p % 2 == 0 || H < p || W < p) return 1;
    const int64_t nb = 2 * p - 1;
    const int64_t bstride = nb <= 2 * V ? 2 * V : nb;
    float *biasp = (float *)calloc((size_t)(nb * bstride), sizeof(float));
    chunk_t *chunks = make_chunks(W, p);
    if (!biasp || !chunks) {
        free(biasp);
        free(chunks);
        return 2;
    }
    for (int64_t y = 0; y < nb; ++y) memcpy(biasp + y * bstride, bias + y * nb, nb * sizeof(float));
    attend_ctx a = {t0,    alpha, beta, depth, mask, biasp, bstride, gamma, B, H, W, p,
                    (W + V - 1) / V, refined, next_mask, chunks, NULL, NULL, NULL, NULL, NULL,
                    NULL};
    int err = run_rows(attend_row, &a, B * H, (size_t)(3 * p * p * V), nthreads);
    free(biasp);
    free(chunks);
    return err;
}

/*
 * One whole MSPN iteration (eqs. 6-11) in one call, so that no torch operation (and no
 * OpenMP team, whose workers spin after each parallel region and then compete with these
 * pthreads for the cores) runs between two iterations:
 *     D~ = where(M0, S, D)                       (eq. 6, a serial pre-pass)
 *     R, m = attention(D~, M)                    (eqs. 7-9, 11)
 *     D' = where(M0, S, (1 - M) D~ + M R)        (eq. 10, measured pixels keep S)
 *     M' = where(M0, M, m)
 * values/target are in the layer's domain (metres, or log(D / D0)); with init != NULL also
 * metres = where(M0, sparse, init * exp(D')). measured is a byte mask (torch.bool).
 * A chunk whose windows hold no nonzero mask value (the front has not reached it) skips the
 * attention: its m is 0 and D' = D~ whatever R is, so the copy is exact (for finite depths;
 * a NaN there would have given NaN). Sparse inputs run many iterations whose early ones
 * reach only a small part of the image.
 */
int mspn_iterate(const float *t0, const float *alpha, const float *beta, float gamma,
                 const float *values, const float *mask, const float *bias, const float *target,
                 const uint8_t *measured, const float *init, const float *sparse, int64_t B,
                 int64_t H, int64_t W, int64_t p, float *next_values, float *next_mask,
                 float *metres, int nthreads) {
    if (B < 1 || p < 1 || p % 2 == 0 || H < p || W < p) return 1;
    if ((init == NULL) != (metres == NULL) || (init != NULL && sparse == NULL)) return 1;
    const int64_t n = B * H * W, nb = 2 * p - 1;
    const int64_t bstride = nb <= 2 * V ? 2 * V : nb;
    float *buf = (float *)malloc((size_t)(2 * n) * sizeof(float));
    int32_t *reach = (int32_t *)malloc((size_t)(B * H * (W + 1)) * sizeof(int32_t));
    float *biasp = (float *)calloc((size_t)(nb * bstride), sizeof(float));
    chunk_t *chunks = make_chunks(W, p);
    if (!buf || !reach || !biasp || !chunks) {
        free(buf);
        free(reach);
        free(biasp);
        free(chunks);
        return 2;
    }
    float *tilde = buf, *measf = buf + n;
    for (int64_t k = 0; k < n; ++k) {
        measf[k] = measured[k] ? 1.0f : 0.0f;
        tilde[k] = measured[k] ? target[k] : values[k];
    }
    for (int64_t row = 0; row < B * H; ++row) { /* nonzero masks, prefix counts per row */
        int32_t *counts = reach + row * (W + 1);
        const float *m = mask + row * W;
        counts[0] = 0;
        for (int64_t j = 0; j < W; ++j) counts[j + 1] = counts[j] + (m[j] != 0.0f);
    }
    for (int64_t y = 0; y < nb; ++y) memcpy(biasp + y * bstride, bias + y * nb, nb * sizeof(float));
    attend_ctx a = {t0,     alpha, beta,   tilde, mask,  biasp,  bstride, gamma,
                    B,      H,     W,      p,     (W + V - 1) / V, next_values, next_mask,
                    chunks, target, measf, init,  sparse, metres, reach};
    int err = run_rows(attend_row, &a, B * H, (size_t)(3 * p * p * V), nthreads);
    free(buf);
    free(reach);
    free(biasp);
    free(chunks);
    return err;
}

/* --------------------------------------------------------------------------------------- */
/* Training kernels: the same maths with backward passes, in plain (unblocked) layouts     */
/* --------------------------------------------------------------------------------------- */

/*
 * Layouts: q0 and k0 channel-last, B x H x W x E; T0 and its gradient pixel-major,
 * B x H x W x p^2 (t = ky * p + kx); alpha, beta, depth, mask and their gradients B x H x W;
 * bias (2p-1) x (2p-1).
 *
 * Vectorisation:
 * - attention (forward and backward) and T0 forward: along the window row. The p elements of
 *   window row ky of query pixel (i, j) are the p adjacent pixels (R, cs .. cs + p - 1) of key
 *   row R = rs + ky, and their T0 entries are contiguous too, so a "segment" of up to V of
 *   them is one vector (p = 13, V = 16: one segment per window row, 13 lanes used). Segment
 *   loads and stores are masked to the segment's n lanes: nothing past the window is read or
 *   written, and lanes past the window hold zeros that take no part in any sum. T0 forward
 *   reads k0 transposed per key row (B x H x E x W) so that a segment of one channel is one
 *   load, shared by 4 adjacent query pixels whose windows fit in V columns.
 * - T0 backward: along the channels (E, a masked last vector when E is not a multiple of V),
 *   4 pixels (or keys) at a time so that every channel vector load feeds 4 FMAs.
 *
 * Threads: every kernel runs as row tasks whose outputs are disjoint. The scatter-shaped
 * gradients (key pixels, which many queries read) are gathers over the query rows whose
 * window contains the key row (T0), or sums of partial rows that each query row wrote
 * privately (attention), so no two tasks write the same element and the results do not
 * depend on the thread count.
 */

#if defined(__AVX512F__) && V == 16
INLINE __mmask16 lane_mask(int64_t n) { return (__mmask16)((1u << n) - 1u); }
/* v[l] = p[l] for l < n, 0 otherwise (n <= V); nothing past p + n is read. */
INLINE vf load_n(const float *p, int64_t n) {
    return (vf)_mm512_maskz_loadu_ps(lane_mask(n), p);
}
/* p[l] = v[l] for l < n; nothing past p + n is written. */
INLINE void store_n(float *p, vf v, int64_t n) {
    _mm512_mask_storeu_ps(p, lane_mask(n), (__m512)v);
}
INLINE float hsum(vf v) { return _mm512_reduce_add_ps((__m512)v); }
INLINE float hmax(vf v) { return _mm512_reduce_max_ps((__m512)v); }
#else
#if defined(__AVX__) && V == 16
typedef union {
    vi v;
    __m256i h[2];
} vi_halves;
typedef union {
    vf v;
    __m256 h[2];
} vf_halves;
#endif
INLINE vf load_n(const float *p, int64_t n) {
    if (n == V) return loadu(p);
#if defined(__AVX__) && V == 8
    /* vmaskmovps: masked-off elements are not read (no fault past the end) */
    return (vf)_mm256_maskload_ps(p, (__m256i)(lane_index() < (int32_t)n));
#elif defined(__AVX__)
    const vi_halves m = {lane_index() < (int32_t)n};
    vf_halves out;
    out.h[0] = _mm256_maskload_ps(p, m.h[0]);
    out.h[1] = _mm256_maskload_ps(p + 8, m.h[1]);
    return out.v;
#else
    vf v = splat(0.0f);
    for (int64_t l = 0; l < n; ++l) v[l] = p[l];
    return v;
#endif
}
INLINE void store_n(float *p, vf v, int64_t n) {
    if (n == V) {
        storeu(p, v);
        return;
    }
#if defined(__AVX__) && V == 8
    _mm256_maskstore_ps(p, (__m256i)(lane_index() < (int32_t)n), (__m256)v);
#elif defined(__AVX__)
    const vi_halves m = {lane_index() < (int32_t)n};
    const vf_halves in = {v};
    _mm256_maskstore_ps(p, m.h[0], in.h[0]);
    _mm256_maskstore_ps(p + 8, m.h[1], in.h[1]);
#else
    for (int64_t l = 0; l < n; ++l) p[l] = v[l];
#endif
}
INLINE float hsum(vf v) {
    float s = 0.0f;
    for (int l = 0; l < V; ++l) s += v[l];
    return s;
}
INLINE float hmax(vf v) {
    float m = v[0];
    for (int l = 1; l < V; ++l) m = v[l] > m ? v[l] : m;
    return m;
}
#endif

/*
 * Keeps x in a register: without it GCC folds a vector load into each FMA that uses it, which
 * turns one load per JT FMAs back into one per FMA. (Only where a vf is one register:
 * VF_IN_ONE_REGISTER.)
 */
#if defined(VF_IN_ONE_REGISTER)
#define KEEP_IN_REGISTER(x) __asm__("" : "+v"(x))
#else
#define KEEP_IN_REGISTER(x) ((void)0)
#endif

/* All bits set in lanes [0, n), clear in the others. */
INLINE vi lanes_below(int64_t n) {
    return lane_index() < (int32_t)n;
}

/* Lanes of `a` where `keep` is set, of `b` elsewhere. */
INLINE vf vselect(vi keep, vf a, vf b) { return (vf)((keep & (vi)a) | (~keep & (vi)b)); }

static inline int64_t col_start(int64_t j, int64_t W, int64_t p) {
    return clamp64(j - p / 2, 0, W - p);
}

/* Query rows whose window contains key row R: [*lo, *hi) (contiguous, row_start is monotone). */
static inline void query_rows_of_key(int64_t R, int64_t H, int64_t p, int64_t *lo, int64_t *hi) {
    int64_t a = R - p < 0 ? 0 : R - p, b = R + p + 1 < H ? R + p + 1 : H;
    while (a < b && row_start(a, H, p) + p <= R) ++a;
    int64_t c = a;
    while (c < b && row_start(c, H, p) <= R) ++c;
    *lo = a;
    *hi = c;
}

/* Split n into ceil(n / most) blocks as even as possible; size of block `blk`. */
static inline int even_block(int64_t n, int64_t most, int64_t blk) {
    const int64_t nblocks = (n + most - 1) / most;
    return (int)(n / nblocks + (blk < n % nblocks ? 1 : 0));
}

/* ---- Guidance term T0 = q0 . k0 over every window, and its backward ---------------------- */

typedef struct {
    const float *q, *k, *g; /* q0, k0 (B x H x W x E); g = dL/dT0 (backward) */
    int64_t H, W, E, p;
    int64_t nrows;          /* B * H */
    int64_t wp;             /* row width of kt: W + V, zero-padded */
    float *kt;              /* forward: k0 transposed per key row, B x H x E x wp */
    const int32_t *jlo, *jhi; /* backward: query columns whose window holds column X */
    const int32_t *cs;        /* backward: window start column of every query column */
    float *t0, *gq, *gk;
} t0_ctx;

/* Forward, phase 1 (one key row per task): kt[b, R, e, X] = k0[b, R, X, e], so that a window
 * segment of one channel is a vector load; columns W .. wp - 1 are zero. */
static int t0_transpose_row(void *vctx, int64_t row, float *scratch) {
    const t0_ctx *c = (const t0_ctx *)vctx;
    const int64_t W = c->W, E = c->E, wp = c->wp;
    const float *src = c->k + row * W * E;
    float *dst = c->kt + row * E * wp;
    (void)scratch;
    for (int64_t X = 0; X < W; ++X)
        for (int64_t e = 0; e < E; ++e) dst[e * wp + X] = src[X * E + e];
    for (int64_t e = 0; e < E; ++e) memset(dst + e * wp + W, 0, (size_t)(wp - W) * sizeof(float));
    return 0;
}

/*
 * T0 of JT adjacent query pixels (j0 + jj) x NK consecutive window rows (R0 + k) whose
 * windows lie in one segment of key columns [s0, s0 + V):
 *     acc[jj][k][l] = sum_e q0(i, j0 + jj)[e] * kt[R0 + k][e][s0 + l],
 * kt0 pointing at (R0, e = 0, s0). Pixel jj's window elements are lanes cs(j0 + jj) - s0 + kx.
 * Each key vector load feeds JT FMAs and each q0 broadcast NK; the JT x NK accumulators stay
 * in registers. (p = 13, V = 16: the windows of 4 adjacent pixels span exactly 16 columns.)
 */
INLINE void t0_tile(const float *qv, int64_t E, const float *kt0, int64_t rstride, int64_t wp,
                    int JT, int NK, vf acc[4][3]) {
    for (int jj = 0; jj < JT; ++jj)
        for (int k = 0; k < NK; ++k) acc[jj][k] = bcast(0.0f);
    for (int64_t e = 0; e < E; ++e) {
        vf kv[3];
        for (int k = 0; k < NK; ++k) {
            kv[k] = loadu(kt0 + e * wp + k * rstride);
            KEEP_IN_REGISTER(kv[k]); /* one load for JT FMAs */
        }
        for (int jj = 0; jj < JT; ++jj) {
            const vf qe = bcast(qv[jj * E + e]);
            for (int k = 0; k < NK; ++k) acc[jj][k] += qe * kv[k];
        }
    }
}

/*
 * As t0_tile for one window row over two segments, key columns [s0, s0 + 2V): with V = 8 one
 * segment is narrower than the windows of 4 adjacent pixels (p + 3 columns), and without this
 * tile each key load would feed one FMA. acc[jj][0..1] hold pixel jj's products with the
 * 2V keys; its window is the p of them from lane cs(j0 + jj) - s0 on.
 */
INLINE void t0_tile2(const float *qv, int64_t E, const float *kt0, int64_t wp, int JT,
                     vf acc[4][2]) {
    for (int jj = 0; jj < JT; ++jj) acc[jj][0] = acc[jj][1] = bcast(0.0f);
    for (int64_t e = 0; e < E; ++e) {
        vf k0 = loadu(kt0 + e * wp), k1 = loadu(kt0 + e * wp + V);
        KEEP_IN_REGISTER(k0);
        KEEP_IN_REGISTER(k1);
        for (int jj = 0; jj < JT; ++jj) {
            const vf qe = bcast(qv[jj * E + e]);
            acc[jj][0] += qe * k0;
            acc[jj][1] += qe * k1;
        }
    }
}

/*
 * Forward, phase 2: T0[b, i, j, t] = q0(i, j) . k0(window element t), one query row per task.
 * Window rows in blocks of at most 3, each block swept along the row in tiles of 4 pixels
 * (windows of up to V columns together; else one pixel and its segments): a block's key
 * segments (3 rows x E channels x V columns) slide along with the tile and stay in L1.
 */
static int t0_forward_row(void *vctx, int64_t row, float *scratch) {
    const t0_ctx *c = (const t0_ctx *)vctx;
    const int64_t H = c->H, W = c->W, E = c->E, p = c->p, P2 = p * p, wp = c->wp;
    const int64_t b = row / H, i = row % H, rs = row_start(i, H, p);
    const int64_t rstride = E * wp; /* kt: one key row */
    const vi iota = lane_index();
    (void)scratch;
    for (int64_t ky0 = 0, blk = 0; ky0 < p; ++blk) {
        const int nk = even_block(p, 3, blk);
        for (int64_t j0 = 0; j0 < W;) {
            const int64_t cs0 = col_start(j0, W, p);
            const int jt = j0 + 3 < W && col_start(j0 + 3, W, p) + p <= cs0 + V ? 4 : 1;
            const float *qv = c->q + (row * W + j0) * E;
            /* two segments hold the 4 windows, and their loads stay inside the padded row
             * (cs0 + 2V <= W - p + 2V <= wp = W + V when p >= V) */
            if (jt == 1 && p >= V && j0 + 3 < W && col_start(j0 + 3, W, p) + p <= cs0 + 2 * V) {
                for (int k = 0; k < nk; ++k) {
                    const float *kt0 = c->kt + (b * H + rs + ky0 + k) * rstride + cs0;
                    vf acc[4][2];
                    t0_tile2(qv, E, kt0, wp, 4, acc);
                    for (int jj = 0; jj < 4; ++jj) {
                        float lanes[2 * V];
                        storeu(lanes, acc[jj][0]);
                        storeu(lanes + V, acc[jj][1]);
                        const int64_t coff = col_start(j0 + jj, W, p) - cs0;
                        memcpy(c->t0 + (row * W + j0 + jj) * P2 + (ky0 + k) * p, lanes + coff,
                               (size_t)p * sizeof(float));
                    }
                }
                j0 += 4;
                continue;
            }
            for (int64_t kx0 = 0; kx0 < p; kx0 += V) { /* one segment unless p > V */
                const int64_t n = p - kx0 < V ? p - kx0 : V;
                const float *kt0 = c->kt + (b * H + rs + ky0) * rstride + cs0 + kx0;
                vf acc[4][3];
#define T0_TILE(JT, NK) t0_tile(qv, E, kt0, rstride, wp, JT, NK, acc)
                if (jt == 4) {
                    if (nk == 1) T0_TILE(4, 1);
                    else if (nk == 2) T0_TILE(4, 2);
                    else T0_TILE(4, 3);
                } else {
                    if (nk == 1) T0_TILE(1, 1);
                    else if (nk == 2) T0_TILE(1, 2);
                    else T0_TILE(1, 3);
                }
#undef T0_TILE
                for (int jj = 0; jj < jt; ++jj) {
                    /* pixel jj's window starts at lane coff: move it to lane 0 */
                    const int32_t coff = (int32_t)(col_start(j0 + jj, W, p) - cs0);
                    float *out = c->t0 + (row * W + j0 + jj) * P2 + ky0 * p + kx0;
                    for (int k = 0; k < nk; ++k) {
                        const vf v = acc[jj][k];
                        store_n(out + k * p, coff ? permute1(v, iota + coff) : v, n);
                    }
                }
            }
            j0 += jt;
        }
        ky0 += nk;
    }
    return 0;
}

/*
 * acc[jj][v] += w[jj] * x[v * V ...] for JT weights sharing the NV channel vectors of x (the
 * last holding nlast channels): one step of the backward passes, vectorised over channels,
 * each channel vector load feeding JT FMAs.
 */
INLINE void axpy_tile(vf acc[4][4], const float *w, const float *x, int JT, int NV,
                      int64_t nlast) {
    vf xv[4];
    for (int v = 0; v + 1 < NV; ++v) xv[v] = loadu(x + v * V);
    xv[NV - 1] = load_n(x + (NV - 1) * V, nlast);
    for (int v = 0; v < NV; ++v) KEEP_IN_REGISTER(xv[v]); /* one load for JT FMAs */
    for (int jj = 0; jj < JT; ++jj) {
        const vf wv = bcast(w[jj]);
        for (int v = 0; v < NV; ++v) acc[jj][v] += wv * xv[v];
    }
}

/* out + jj * E <- acc[jj] (channel vectors of JT consecutive pixels). */
INLINE void store_tile(float *out, vf acc[4][4], int64_t E, int JT, int NV, int64_t nlast) {
    for (int jj = 0; jj < JT; ++jj) {
        for (int v = 0; v + 1 < NV; ++v) storeu(out + jj * E + v * V, acc[jj][v]);
        store_n(out + jj * E + (NV - 1) * V, acc[jj][NV - 1], nlast);
    }
}

/*
 * dL/dq0(i, j)[e0 ..] = sum_t g[i, j, t] k0(window element t)[e0 ..] for JT adjacent pixels
 * j = j0 + jj of query row i. In window row ky (key row R) the pixels' windows together span
 * the key columns cs(j0) + u, u < U; each key's channel vectors are loaded once for the JT
 * pixels, whose weight is g[i, j, ky, u - coff[jj]] (zero outside pixel jj's window). The
 * JT x NV accumulators stay in registers over the whole window.
 */
INLINE void t0_grad_query_tile(const t0_ctx *c, int64_t b, int64_t i, int64_t j0, int64_t e0,
                               int JT, int NV, int64_t nlast) {
    const int64_t H = c->H, W = c->W, E = c->E, p = c->p, P2 = p * p;
    const int64_t pix0 = (b * H + i) * W + j0, cs0 = c->cs[j0], rs = row_start(i, H, p);
    int64_t coff[4];
    for (int jj = 0; jj < JT; ++jj) coff[jj] = c->cs[j0 + jj] - cs0;
    /* keys u in [coff[JT - 1], p) are in every pixel's window */
    const int64_t U = coff[JT - 1] + p, full0 = coff[JT - 1], full1 = p;
    vf acc[4][4];
    for (int jj = 0; jj < JT; ++jj)
        for (int v = 0; v < NV; ++v) acc[jj][v] = bcast(0.0f);
    for (int64_t ky = 0; ky < p; ++ky) {
        const float *keys = c->k + ((b * H + rs + ky) * W + cs0) * E + e0;
        const float *g[4]; /* g[jj][u] = g[i, j0 + jj, ky, u - coff[jj]] */
        for (int jj = 0; jj < JT; ++jj) g[jj] = c->g + (pix0 + jj) * P2 + ky * p - coff[jj];
        for (int64_t u = 0; u < U; ++u) {
            float w[4];
            if (u >= full0 && u < full1) {
                for (int jj = 0; jj < JT; ++jj) w[jj] = g[jj][u];
            } else {
                for (int jj = 0; jj < JT; ++jj)
                    w[jj] = u >= coff[jj] && u < coff[jj] + p ? g[jj][u] : 0.0f;
            }
            axpy_tile(acc, w, keys + u * E, JT, NV, nlast);
        }
    }
    store_tile(c->gq + pix0 * E + e0, acc, E, JT, NV, nlast);
}

/*
 * dL/dk0(R, X)[e0 ..] = sum over the queries (i, j) whose window holds (R, X), at window
 * element (R - rs(i), X - cs(j)), of g[i, j, R - rs(i), X - cs(j)] q0(i, j)[e0 ..], for JT
 * adjacent keys X = X0 + xx of key row R. In each query row i whose window contains R, the
 * pixels j in [jlo(X0), jhi(X0 + JT - 1)] cover them; each pixel's channel vectors are loaded
 * once for the JT keys, whose weights are JT consecutive entries of g (zero outside the
 * window). The JT x NV accumulators stay in registers over all those query rows.
 */
INLINE void t0_grad_key_tile(const t0_ctx *c, int64_t b, int64_t R, int64_t X0, int64_t e0,
                             int JT, int NV, int64_t nlast) {
    const int64_t H = c->H, W = c->W, E = c->E, p = c->p, P2 = p * p;
    /* pixels j in [jlo(X0 + JT - 1), jhi(X0)] hold every one of the JT keys */
    const int64_t j_lo = c->jlo[X0], j_hi = c->jhi[X0 + JT - 1];
    const int64_t full0 = c->jlo[X0 + JT - 1], full1 = c->jhi[X0];
    int64_t lo, hi;
    query_rows_of_key(R, H, p, &lo, &hi);
    vf acc[4][4];
    for (int jj = 0; jj < JT; ++jj)
        for (int v = 0; v < NV; ++v) acc[jj][v] = bcast(0.0f);
    for (int64_t i = lo; i < hi; ++i) {
        const int64_t ky = R - row_start(i, H, p);
        const float *q = c->q + (b * H + i) * W * E + e0;
        const float *g = c->g + (b * H + i) * W * P2 + ky * p + X0; /* + j * P2 - cs(j) + xx */
        for (int64_t j = j_lo; j <= j_hi; ++j) {
            const float *gj = g + j * P2 - c->cs[j]; /* gj[xx] = g[i, j, ky, X0 + xx - cs(j)] */
            if (j >= full0 && j <= full1) {
                axpy_tile(acc, gj, q + j * E, JT, NV, nlast);
            } else {
                float w[4];
                for (int xx = 0; xx < JT; ++xx) {
                    const int64_t kx = X0 + xx - c->cs[j];
                    w[xx] = kx >= 0 && kx < p ? gj[xx] : 0.0f;
                }
                axpy_tile(acc, w, q + j * E, JT, NV, nlast);
            }
        }
    }
    store_tile(c->gk + ((b * H + R) * W + X0) * E + e0, acc, E, JT, NV, nlast);
}

/*
 * Backward, one task per query row (tasks < B * H: dL/dq0 of that row) or per key row (the
 * other B * H tasks: dL/dk0 of that row, gathered from the query rows whose window contains
 * it). Pixels (keys) in tiles of 4, channels in blocks of up to 4 vectors (4V).
 */
static int t0_backward_row(void *vctx, int64_t task, float *scratch) {
    const t0_ctx *c = (const t0_ctx *)vctx;
    const int64_t H = c->H, W = c->W, E = c->E;
    const int key_task = task >= c->nrows;
    const int64_t row = key_task ? task - c->nrows : task, b = row / H, r = row % H;
    (void)scratch;
    for (int64_t e0 = 0; e0 < E; e0 += 4 * V) {
        const int64_t ne = E - e0 < 4 * V ? E - e0 : 4 * V;
        const int nv = (int)((ne + V - 1) / V);
        const int64_t nlast = ne - (nv - 1) * V;
        for (int64_t x0 = 0; x0 < W;) {
            const int jt = W - x0 >= 4 ? 4 : 1;
            switch (nv * 8 + jt) {
#define GRAD_CASE(NV, JT)                                                       \
    case NV * 8 + JT:                                                           \
        if (key_task)                                                           \
            t0_grad_key_tile(c, b, r, x0, e0, JT, NV, nlast);                   \
        else                                                                    \
            t0_grad_query_tile(c, b, r, x0, e0, JT, NV, nlast);                 \
        break;
                GRAD_CASE(1, 1) GRAD_CASE(2, 1) GRAD_CASE(3, 1) GRAD_CASE(4, 1)
                GRAD_CASE(1, 4) GRAD_CASE(2, 4) GRAD_CASE(3, 4) GRAD_CASE(4, 4)
#undef GRAD_CASE
                default: break; /* nv is 1 .. 4, jt 1 or 4 */
            }
            x0 += jt;
        }
    }
    return 0;
}

/* ---- One attention iteration (eqs. 8, 9, 11) and its backward ------------------------- */

typedef struct {
    const float *t0, *alpha, *beta, *depth, *mask, *bias, *gref, *gmask;
    float gamma;
    int64_t B, H, W, p;
    int64_t nseg;                                  /* segments per window row: ceil(p / V) */
    int64_t wp;                                    /* row width of part: W + V */
    float *refined, *next_mask;                    /* forward outputs */
    float *gt0, *galpha, *gbeta, *gdepth, *gmaskin; /* backward outputs */
    float *gbias_rows, *ggamma_rows;               /* per query row partial sums */
    float *part; /* 3 x B x H x p x wp: key-side partial sums per (query row, window row) */
} train_attend_ctx;

/*
 * Eq. 8 for query pixel (b, i, j) in the decomposed form, one vector per window segment
 * s = ky * nseg + kx0 / V (lanes: window columns kx0 .. kx0 + n - 1):
 *     d, m, al: depth, mask and alpha of the window pixels p_t;
 *     x = T0[p, t] + d(p) alpha(p_t) + d(p_t) (beta(p) + gamma d(p))  (logit before masking);
 *     l = m(p_t) x + bias(p_t - p), -3e38 in lanes past the window.
 * x and al may be NULL (the forward does not need them). Returns the largest logit, splat.
 */
INLINE vf window_logits(const train_attend_ctx *c, int64_t b, int64_t i, int64_t j, vf *l, vf *x,
                        vf *d, vf *m, vf *al) {
    const int64_t H = c->H, W = c->W, p = c->p, nb = 2 * p - 1, img = b * H * W;
    const int64_t rs = row_start(i, H, p), cs = col_start(j, W, p), q = img + i * W + j;
    const float *t0 = c->t0 + q * p * p;
    const float dqs = c->depth[q];
    const vf dq = bcast(dqs), bq = bcast(c->beta[q] + c->gamma * dqs);
    vf mx = bcast(-3.0e38f);
    for (int64_t ky = 0, s = 0; ky < p; ++ky) {
        const int64_t off = img + (rs + ky) * W + cs;
        const float *brow = c->bias + (rs + ky - i + p - 1) * nb + (cs - j + p - 1);
        for (int64_t kx0 = 0; kx0 < p; kx0 += V, ++s) {
            const int64_t n = p - kx0 < V ? p - kx0 : V;
            const vf dt = load_n(c->depth + off + kx0, n), mt = load_n(c->mask + off + kx0, n);
            const vf at = load_n(c->alpha + off + kx0, n);
            const vf xt = load_n(t0 + ky * p + kx0, n) + dq * at + dt * bq;
            const vf lt = vselect(lanes_below(n), mt * xt + load_n(brow + kx0, n), bcast(-3.0e38f));
            l[s] = lt;
            d[s] = dt;
            m[s] = mt;
            if (x) x[s] = xt;
            if (al) al[s] = at;
            mx = vmax(mx, lt);
        }
    }
    return bcast(hmax(mx));
}

/*
 * Softmax numerators, in place: l[s] <- e_s = exp(l_s - max) (zero past the window); sums over
 * the window of e, e d and e m (eq. 8's denominator, eqs. 9 and 11 before normalising).
 */
INLINE void window_softmax(int64_t p, vf mx, vf *l, const vf *d, const vf *m,
                           float *sum, float *sum_d, float *sum_m) {
    vf se = bcast(0.0f), sd = se, sm = se;
    for (int64_t ky = 0, s = 0; ky < p; ++ky) {
        for (int64_t kx0 = 0; kx0 < p; kx0 += V, ++s) {
            const vi valid = lanes_below(p - kx0 < V ? p - kx0 : V);
            const vf e = (vf)((vi)vexp_nonpos(l[s] - mx) & valid);
            l[s] = e;
            se += e;
            sd += e * d[s];
            sm += e * m[s];
        }
    }
    *sum = hsum(se);
    *sum_d = hsum(sd);
    *sum_m = hsum(sm);
}

/* Forward (one query row per task): refined (eq. 9) and next mask (eq. 11). */
static int train_attend_row(void *vctx, int64_t row, float *scratch) {
    const train_attend_ctx *c = (const train_attend_ctx *)vctx;
    const int64_t H = c->H, W = c->W, ns = c->p * c->nseg;
    const int64_t b = row / H, i = row % H;
    vf *l = (vf *)scratch, *d = l + ns, *m = d + ns;
    for (int64_t j = 0; j < W; ++j) {
        const vf mx = window_logits(c, b, i, j, l, NULL, d, m, NULL);
        float se, sd, sm;
        window_softmax(c->p, mx, l, d, m, &se, &sd, &sm);
        const float inv = 1.0f / se;
        c->refined[row * W + j] = sd * inv;
        c->next_mask[row * W + j] = sm * inv;
    }
    return 0;
}

/*
 * Backward, phase 1 (one query row i per task). With a = softmax(l), r = sum a d,
 * n = sum a m and upstream gradients gr, gn:
 *     dL/dl_t = a_t (gr d_t + gn m_t - gr r - gn n)              (gl)
 *     dL/dT0[p, t] = m_t gl_t                                     (glm)
 *     dL/dbias(p_t - p) += gl_t,  dL/dbeta(p) = sum_t glm_t d_t,
 *     dL/dgamma += d(p) sum_t glm_t d_t,
 *     dL/dd(p) (query part) = sum_t glm_t (alpha_t + gamma d_t),
 * and for the key pixel p_t:
 *     dL/dalpha(p_t) += glm_t d(p),   dL/dd(p_t) += glm_t (beta(p) + gamma d(p)) + a_t gr,
 *     dL/dm(p_t) += gl_t x_t + a_t gn.
 * Query-pixel terms are written directly. The bias terms are summed in a padded local grid,
 * written to this row's slice of gbias_rows at the end. The key terms are summed over the
 * row's pixels into p private partial rows per output (part[., b, i, ky, X], X the key
 * column), which phase 2 adds up per key row.
 */
static int train_attend_backward_query_row(void *vctx, int64_t row, float *scratch) {
    const train_attend_ctx *c = (const train_attend_ctx *)vctx;
    const int64_t H = c->H, W = c->W, p = c->p, nb = 2 * p - 1, nseg = c->nseg, ns = p * nseg;
    const int64_t wp = c->wp, bw = nb + V; /* bias grid row width, padded for segment loads */
    const int64_t b = row / H, i = row % H, rs = row_start(i, H, p), img = b * H * W;
    const int64_t plane = c->B * H * p * wp;
    vf *l = (vf *)scratch, *x = l + ns, *d = x + ns, *m = d + ns, *al = m + ns;
    float *gbias = (float *)(al + ns); /* nb x bw */
    float *part_a = c->part + row * p * wp, *part_d = part_a + plane, *part_m = part_d + plane;
    double ggamma = 0.0;
    memset(gbias, 0, (size_t)(nb * bw) * sizeof(float));
    for (int64_t k = 0; k < 3; ++k) memset(part_a + k * plane, 0, (size_t)(p * wp) * sizeof(float));
    for (int64_t j = 0; j < W; ++j) {
        const int64_t q = img + i * W + j, cs = col_start(j, W, p);
        const vf mx = window_logits(c, b, i, j, l, x, d, m, al);
        float se, sd, sm;
        window_softmax(p, mx, l, d, m, &se, &sd, &sm);
        const float inv = 1.0f / se, gr = c->gref[q], gn = c->gmask[q], dq = c->depth[q];
        const vf vinv = bcast(inv), vgr = bcast(gr), vgn = bcast(gn), vdq = bcast(dq);
        const vf vsr = bcast(gr * (sd * inv) + gn * (sm * inv)); /* gr r + gn n */
        const vf vbq = bcast(c->beta[q] + c->gamma * dq);
        vf gbeta = bcast(0.0f), galq = gbeta;
        float *gt0 = c->gt0 + q * p * p;
        for (int64_t ky = 0, s = 0; ky < p; ++ky) {
            float *brow = gbias + (rs + ky - i + p - 1) * bw + (cs - j + p - 1);
            const int64_t prow = ky * wp + cs;
            for (int64_t kx0 = 0; kx0 < p; kx0 += V, ++s) {
                const int64_t n = p - kx0 < V ? p - kx0 : V;
                const vf a = l[s] * vinv; /* zero past the window, so gl and glm are too */
                const vf gl = a * (vgr * d[s] + vgn * m[s] - vsr);
                const vf glm = gl * m[s];
                store_n(gt0 + ky * p + kx0, glm, n);
                gbeta += glm * d[s];
                galq += glm * al[s];
                storeu(brow + kx0, loadu(brow + kx0) + gl);
                float *pa = part_a + prow + kx0, *pd = part_d + prow + kx0;
                float *pm = part_m + prow + kx0;
                storeu(pa, loadu(pa) + glm * vdq);
                storeu(pd, loadu(pd) + glm * vbq + a * vgr);
                storeu(pm, loadu(pm) + gl * x[s] + a * vgn);
            }
        }
        const float gb = hsum(gbeta);
        c->gbeta[q] = gb;
        c->gdepth[q] = hsum(galq) + c->gamma * gb; /* query part; phase 2 adds the key part */
        ggamma += (double)(dq * gb);
    }
    float *out = c->gbias_rows + row * nb * nb;
    for (int64_t y = 0; y < nb; ++y)
        memcpy(out + y * nb, gbias + y * bw, (size_t)nb * sizeof(float));
    c->ggamma_rows[row] = (float)ggamma;
    return 0;
}

/* Backward, phase 2 (one key row R per task): the key parts of dL/dalpha, dL/dd and dL/dm
 * are the sums of the partial rows (query row i, window row R - rs(i)) of the query rows
 * whose window contains R. */
static int train_attend_backward_key_row(void *vctx, int64_t row, float *scratch) {
    const train_attend_ctx *c = (const train_attend_ctx *)vctx;
    const int64_t H = c->H, W = c->W, p = c->p, wp = c->wp;
    const int64_t b = row / H, R = row % H, plane = c->B * H * p * wp;
    int64_t lo, hi;
    (void)scratch;
    float *galpha = c->galpha + row * W, *gdepth = c->gdepth + row * W;
    float *gmask = c->gmaskin + row * W;
    query_rows_of_key(R, H, p, &lo, &hi);
    for (int64_t X0 = 0; X0 < W; X0 += V) {
        const int64_t n = W - X0 < V ? W - X0 : V;
        vf sa = bcast(0.0f), sd = sa, sm = sa;
        for (int64_t i = lo; i < hi; ++i) {
            const float *pa = c->part + ((b * H + i) * p + R - row_start(i, H, p)) * wp + X0;
            sa += loadu(pa);
            sd += loadu(pa + plane);
            sm += loadu(pa + 2 * plane);
        }
        store_n(galpha + X0, sa, n);
        store_n(gdepth + X0, load_n(gdepth + X0, n) + sd, n);
        store_n(gmask + X0, sm, n);
    }
    return 0;
}

/* --------------------------------------------------------------------------------------- */
/* Training entry points                                                                   */
/* --------------------------------------------------------------------------------------- */

int mspn_train_t0(const float *q, const float *k, int64_t B, int64_t H, int64_t W, int64_t E,
                  int64_t p, float *t0, int nthreads) {
    if (B < 1 || E < 1 || p < 1 || p % 2 == 0 || H < p || W < p) return 1;
    const int64_t wp = W + V;
    float *kt = (float *)malloc((size_t)(B * H * E * wp) * sizeof(float));
    if (!kt) return 2;
    t0_ctx c = {.q = q, .k = k, .H = H, .W = W, .E = E, .p = p, .nrows = B * H, .wp = wp,
                .kt = kt, .t0 = t0};
    int err = run_rows(t0_transpose_row, &c, B * H, 0, nthreads);
    if (!err) err = run_rows(t0_forward_row, &c, B * H, 0, nthreads);
    free(kt);
    return err;
}

int mspn_train_t0_backward(const float *q, const float *k, const float *g, int64_t B, int64_t H,
                           int64_t W, int64_t E, int64_t p, float *gq, float *gk, int nthreads) {
    if (B < 1 || E < 1 || p < 1 || p % 2 == 0 || H < p || W < p) return 1;
    /* query columns whose window holds key column X: [jlo[X], jhi[X]] (cs is monotone) */
    int32_t *jlo = (int32_t *)malloc((size_t)(3 * W) * sizeof(int32_t)), *jhi = jlo + W;
    int32_t *cs = jhi + W;
    if (!jlo) return 2;
    for (int64_t X = 0; X < W; ++X) {
        jlo[X] = (int32_t)W;
        jhi[X] = -1;
    }
    for (int64_t j = 0; j < W; ++j) {
        cs[j] = (int32_t)col_start(j, W, p);
        for (int64_t X = cs[j]; X < cs[j] + p; ++X) {
            if (j < jlo[X]) jlo[X] = (int32_t)j;
            if (j > jhi[X]) jhi[X] = (int32_t)j;
        }
    }
    t0_ctx c = {.q = q, .k = k, .g = g, .H = H, .W = W, .E = E, .p = p, .nrows = B * H,
                .jlo = jlo, .jhi = jhi, .cs = cs, .gq = gq, .gk = gk};
    int err = run_rows(t0_backward_row, &c, 2 * B * H, 0, nthreads);
    free(jlo);
    return err;
}

int mspn_train_attend(const float *t0, const float *alpha, const float *beta, float gamma,
                      const float *depth, const float *mask, const float *bias, int64_t B,
                      int64_t H, int64_t W, int64_t p, float *refined, float *next_mask,
                      int nthreads) {
    if (B < 1 || p < 1 || p % 2 == 0 || H < p || W < p) return 1;
    const int64_t nseg = (p + V - 1) / V;
    train_attend_ctx c = {.t0 = t0, .alpha = alpha, .beta = beta, .depth = depth,
                          .mask = mask, .bias = bias, .gamma = gamma, .B = B, .H = H, .W = W,
                          .p = p, .nseg = nseg, .refined = refined, .next_mask = next_mask};
    return run_rows(train_attend_row, &c, B * H, (size_t)(3 * p * nseg * V), nthreads);
}

/* work: 3 * B * H * p * (W + V) floats (the key-side partial rows). */
int mspn_train_attend_backward(const float *t0, const float *alpha, const float *beta,
                               float gamma, const float *depth, const float *mask,
                               const float *bias, const float *gref, const float *gmask,
                               int64_t B, int64_t H, int64_t W, int64_t p, float *gt0,
                               float *galpha, float *gbeta, float *gdepth, float *gmaskin,
                               float *gbias_rows, float *ggamma_rows, float *work,
                               int nthreads) {
    if (B < 1 || p < 1 || p % 2 == 0 || H < p || W < p) return 1;
    const int64_t nseg = (p + V - 1) / V, nb = 2 * p - 1;
    train_attend_ctx c = {.t0 = t0, .alpha = alpha, .beta = beta, .depth = depth,
                          .mask = mask, .bias = bias, .gref = gref, .gmask = gmask,
                          .gamma = gamma, .B = B, .H = H, .W = W, .p = p, .nseg = nseg,
                          .wp = W + V, .gt0 = gt0, .galpha = galpha, .gbeta = gbeta,
                          .gdepth = gdepth, .gmaskin = gmaskin, .gbias_rows = gbias_rows,
                          .ggamma_rows = ggamma_rows, .part = work};
    const size_t scratch = (size_t)(5 * p * nseg * V + nb * (nb + V));
    int err = run_rows(train_attend_backward_query_row, &c, B * H, scratch, nthreads);
    if (!err) err = run_rows(train_attend_backward_key_row, &c, B * H, 0, nthreads);
    return err;
}
