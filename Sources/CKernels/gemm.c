// Many users' candidates from a maintained BLAS: `mfrec_gemm_candidates` writes exactly what
// `mfrec_block_candidates` writes (the same candidates with the same scores, each user's in ascending rows), but
// finds them with one `cblas_sgemm` of a block of users × a block of rows, then re-scores every sum within a
// rounding bound of its user's threshold with the exact kernel (`mfrec_dots`). OpenBLAS's sgemm sums in its own
// order, so its sums only pick candidates; the scores written are always the exact kernel's, which is why lists
// do not depend on whether a BLAS was found.
//
// The BLAS is loaded at run time (dlopen of Debian's libopenblas0: `libopenblas.so.0`), not linked: a machine
// without it builds and runs mfrec with its own kernels, and `MFREC_BLAS=off` in the environment turns it off.
// OpenBLAS is asked for one thread per call (its own threads would compete with the callers', which already
// run one block of users per core).
//
// The bound is bounds.h's, the one the AVX-512 panel kernel (scan.c) uses.
#include "bounds.h"
#include "mfrec_kernels.h"

#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#pragma STDC FP_CONTRACT OFF

// cblas_sgemm's signature, with CBLAS's enum values (row-major 101, no transpose 111, transpose 112).
typedef void (*sgemm_fn)(int order, int transa, int transb, int m, int n, int k, float alpha, const float *a,
                         int lda, const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);

static sgemm_fn sgemm = NULL;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void load(void) {
    const char *setting = getenv("MFREC_BLAS");
    if (setting && (strcmp(setting, "off") == 0 || strcmp(setting, "0") == 0)) return;
    const char *names[] = {"libopenblas.so.0", "libopenblas.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (!library) continue;
        sgemm_fn found = (sgemm_fn)dlsym(library, "cblas_sgemm");
        set_threads_fn threads = (set_threads_fn)dlsym(library, "openblas_set_num_threads");
        if (!found || !threads) {
            dlclose(library);
            continue;
        }
        threads(1);
        sgemm = found;  // kept loaded for the life of the process
        return;
    }
}

int mfrec_blas_available(void) {
    pthread_once(&load_once, load);
    return sgemm != NULL;
}

// An upper bound of max_r ‖row_r‖ over the rows (∞ when any value is not finite).
static double max_row_norm(const float *rows, size_t k, size_t stride, size_t count) {
    double top = 0;
    for (size_t r = 0; r < count; r++) {
        const float *x = rows + r * stride;
        double norm2 = 0;
        for (size_t d = 0; d < k; d++) norm2 += (double)x[d] * (double)x[d];
        if (!(norm2 <= top)) top = norm2;  // a NaN sticks (and fails isfinite below)
    }
    return isfinite(top) ? sqrt(top) * (1.0 + 0x1p-20) : INFINITY;
}

size_t mfrec_gemm_candidates(const float *norms, const float *queries, size_t qstride, size_t nu, const float *rows,
                             size_t k, size_t stride, size_t count, const float *bias, const float *scale,
                             const float *threshold, float *sums, uint32_t *out_user, uint32_t *out_row,
                             float *out_score) {
    if (count == 0 || nu == 0) return 0;
    double row_norm = max_row_norm(rows, k, stride, count), max_bias = bias ? mfrec_max_abs(bias, count) : 0;
    int bounded = mfrec_blas_available() && isfinite(row_norm) && isfinite(max_bias);
    for (size_t u = 0; bounded && u < nu; u++) bounded = isfinite(norms[u]);
    // Without a bound (no BLAS, a NaN or infinite value): the exact kernel scores the block.
    if (!bounded)
        return mfrec_block_candidates(queries, qstride, nu, rows, k, stride, count, bias, scale, threshold, out_user,
                                      out_row, out_score);
    sgemm(101, 111, 112, (int)nu, (int)count, (int)k, 1.0f, queries, (int)qstride, rows, (int)stride, 0.0f, sums,
          (int)count);
    size_t found = 0;
    for (size_t u = 0; u < nu; u++) {
        const float *s = sums + u * count, *q = queries + u * qstride;
        float factor = bias ? scale[u] : 0;
        float limit = mfrec_candidate_limit(threshold[u], norms[u], row_norm, factor, max_bias, k);
        // The rows whose approximate score reaches the limit, ascending, into out_row[found...] (room: this
        // user's count rows at most, and every earlier user wrote at most count each); -∞ takes every row (a
        // bound too wide for a float). The bias term is added in place (the sums are scratch).
        uint32_t *picked = out_row + found;
        size_t n;
        if (!(limit > -INFINITY)) {
            for (size_t r = 0; r < count; r++) picked[r] = (uint32_t)r;
            n = count;
        } else {
            if (bias)
                for (size_t r = 0; r < count; r++) sums[u * count + r] = s[r] + factor * bias[r];
            n = mfrec_select_ge(s, count, limit, picked);
        }
        // Each picked row re-scored exactly; kept ones are compacted in place (the write never passes the read).
        for (size_t j = 0; j < n; j++) {
            size_t r = picked[j];
            float v;
            mfrec_dots(q, rows + r * stride, k, stride, 1, NULL, &v);
            if (bias) v = v + scale[u] * bias[r];
            if (v >= threshold[u]) {
                out_user[found] = (uint32_t)u;
                out_row[found] = (uint32_t)r;
                out_score[found] = v;
                found++;
            }
        }
    }
    return found;
}
