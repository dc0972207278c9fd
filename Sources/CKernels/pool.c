// A small pool of helper threads for splitting one scan over several cores with a hand-off of about a microsecond.
//
// Why: a one-user scan of 59,047 × 64 reduced-precision rows takes 70–110 µs on one core; handing half of it to a
// Dispatch worker costs tens of microseconds (the worker is asleep and must be woken), which ate the whole gain. The
// helpers here spin (with `pause`) for a short while after each job, so back-to-back scans find them awake, and
// sleep on a condition variable after that, so an idle process costs nothing.
//
// How: one job at a time (a caller that finds the pool busy gets 0 back and splits its work some other way). A job
// is (fn, ctx, parts); parts are claimed through one 64-bit word holding the job's number, its part count and the
// next unclaimed part, so a helper still finishing a claim of an earlier job can never take a part of the next one
// (it sees the earlier job exhausted, or another number), and fn and ctx are read only after a successful claim.
// The caller runs parts too and returns once every part is done; no helper touches the job's context after that.

#include "mfrec_kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MFREC_PAUSE() _mm_pause()
#else
#define MFREC_PAUSE() ((void)0)
#endif

#define MFREC_POOL_MAX_HELPERS 15
#define MFREC_POOL_SPIN_NS 200000  // how long a helper stays awake after a job (0.2 ms)
#define MFREC_PART_BITS 20  // the claims word: job number (24 bits) | parts (20) | next part (20)
#define MFREC_PART_MASK ((1ull << MFREC_PART_BITS) - 1)

static pthread_mutex_t pool_busy = PTHREAD_MUTEX_INITIALIZER;  // held by the caller of a job
static pthread_mutex_t pool_sleep = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_wake = PTHREAD_COND_INITIALIZER;
static int pool_helpers;   // started helpers (under pool_busy)
static int pool_sleepers;  // helpers waiting on pool_wake (under pool_sleep)

static _Atomic uint64_t job_number;  // incremented for each job, after its fields are set
static _Atomic uint64_t job_claims;  // see MFREC_PART_BITS
static _Atomic long job_done;        // parts finished of the current job
static mfrec_part_fn job_fn;
static void *job_ctx;

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

// Claims and runs parts of job `number` until none is left (or the job is no longer current).
static void work(uint64_t number) {
    for (;;) {
        uint64_t claims = atomic_load(&job_claims);
        if ((claims >> (2 * MFREC_PART_BITS)) != (number & ((1ull << (64 - 2 * MFREC_PART_BITS)) - 1))) return;
        uint64_t part = claims & MFREC_PART_MASK, parts = (claims >> MFREC_PART_BITS) & MFREC_PART_MASK;
        if (part >= parts) return;
        if (!atomic_compare_exchange_weak(&job_claims, &claims, claims + 1)) continue;
        job_fn(job_ctx, (long)part);
        atomic_fetch_add(&job_done, 1);
    }
}

// `start` is the job number when the helper was created: a job published after that is one to join, even when
// it was published before the thread got to run (reading the number here instead would skip it).
static void *helper(void *start) {
    uint64_t seen = (uint64_t)(uintptr_t)start;
    for (;;) {
        uint64_t start = now_ns(), spins = 0;
        while (atomic_load(&job_number) == seen) {
            MFREC_PAUSE();
            if (++spins % 256 == 0 && now_ns() - start > MFREC_POOL_SPIN_NS) {
                pthread_mutex_lock(&pool_sleep);
                pool_sleepers++;
                while (atomic_load(&job_number) == seen) pthread_cond_wait(&pool_wake, &pool_sleep);
                pool_sleepers--;
                pthread_mutex_unlock(&pool_sleep);
            }
        }
        seen = atomic_load(&job_number);
        work(seen);
    }
    return NULL;
}

int mfrec_pool_run(long parts, mfrec_part_fn fn, void *ctx) {
    if (parts <= 1) {
        if (parts == 1) fn(ctx, 0);
        return 1;
    }
    if (parts > (long)MFREC_PART_MASK || pthread_mutex_trylock(&pool_busy) != 0) return 0;
    int wanted = parts - 1 < MFREC_POOL_MAX_HELPERS ? (int)(parts - 1) : MFREC_POOL_MAX_HELPERS;
    while (pool_helpers < wanted) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&thread, &attr, helper, (void *)(uintptr_t)atomic_load(&job_number));
        pthread_attr_destroy(&attr);
        if (failed) break;
        pool_helpers++;
    }
    job_fn = fn;
    job_ctx = ctx;
    atomic_store(&job_done, 0);
    uint64_t number = atomic_load(&job_number) + 1;
    atomic_store(&job_claims, (number & ((1ull << (64 - 2 * MFREC_PART_BITS)) - 1)) << (2 * MFREC_PART_BITS)
                                  | (uint64_t)parts << MFREC_PART_BITS);
    pthread_mutex_lock(&pool_sleep);
    atomic_store(&job_number, number);
    if (pool_sleepers > 0) pthread_cond_broadcast(&pool_wake);
    pthread_mutex_unlock(&pool_sleep);
    work(number);
    while (atomic_load(&job_done) < parts) MFREC_PAUSE();
    pthread_mutex_unlock(&pool_busy);
    return 1;
}
