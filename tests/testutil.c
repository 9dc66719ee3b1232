/* Shared test helpers (see testutil.h). */
#include "testutil.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef IC_TESTS_DIR
#error "IC_TESTS_DIR must be defined by the build"
#endif

const char *tu_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", IC_TESTS_DIR, rel);
    return buf;
}

ic_safetensors *tu_fixture(const char *name)
{
    char rel[512];
    snprintf(rel, sizeof rel, "golden/fixtures/%s.safetensors", name);
    ic_safetensors *st = NULL;
    int rc = ic_st_open(&st, tu_path(rel));
    ck_assert_msg(rc == 0, "cannot open fixture %s (rc %d)", rel, rc);
    return st;
}

const ic_st_tensor *tu_fixture_tensor(const ic_safetensors *st, const char *name)
{
    const ic_st_tensor *t = ic_st_find(st, name);
    ck_assert_msg(t != NULL, "fixture tensor %s missing", name);
    ck_assert_msg(t->f32 != NULL, "fixture tensor %s is not float", name);
    return t;
}

const ic_st_tensor *tu_case_tensor(const ic_safetensors *st, int i, const char *field)
{
    char name[64];
    snprintf(name, sizeof name, "c%d.%s", i, field);
    return tu_fixture_tensor(st, name);
}

int tu_has_case(const ic_safetensors *st, int i)
{
    char name[64];
    snprintf(name, sizeof name, "c%d.x", i);
    return ic_st_find(st, name) != NULL;
}

ic_tensor tu_view4(const ic_st_tensor *t)
{
    ck_assert_int_eq(t->ndim, 4);
    /* the cast drops const for the view type: callers only read it */
    return ic_tensor_wrap((float *)t->f32, (int)t->shape[0], (int)t->shape[1], (int)t->shape[2],
                          (int)t->shape[3]);
}

ic_tensor tu_copy4(const ic_st_tensor *t)
{
    ic_tensor v = tu_view4(t);
    float *d = malloc(t->numel * sizeof(float));
    ck_assert_ptr_nonnull(d);
    memcpy(d, t->f32, t->numel * sizeof(float));
    v.data = d;
    return v;
}

uint64_t tu_rand_u64(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

float tu_rand_uniform(uint64_t *s, float lo, float hi)
{
    double u = (double)(tu_rand_u64(s) >> 11) / 9007199254740992.0;
    return (float)(lo + (hi - lo) * u);
}

int tu_rand_int(uint64_t *s, int lo, int hi)
{
    return lo + (int)(tu_rand_u64(s) % (uint64_t)(hi - lo + 1));
}

void tu_rand_fill(float *x, size_t n, uint64_t *s, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = tu_rand_uniform(s, lo, hi);
}

size_t tu_compare(const float *got, const float *want, size_t n, double rtol, const char *label,
                  double *max_rel)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(want[i]) > scale)
            scale = fabs(want[i]);
    scale *= 1e-2;
    if (scale == 0)
        scale = 1e-12;
    size_t bad = 0;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        double rel = d / (fabs(want[i]) + scale);
        if (!(rel <= worst))
            worst = isnan(rel) ? INFINITY : (rel > worst ? rel : worst);
        if (!(rel <= rtol)) {
            if (bad < 5)
                fprintf(stderr, "%s[%zu]: got %.8g want %.8g (rel %.3g)\n", label, i, got[i],
                        want[i], rel);
            bad++;
        }
    }
    if (max_rel)
        *max_rel = worst;
    return bad;
}

double tu_max_rel_error(const float *got, const float *want, size_t n, double tol, const char *label)
{
    double scale = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(want[i]) > scale)
            scale = fabs(want[i]);
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (!(d <= worst)) {
            worst = isnan(d) ? INFINITY : d;
            at = i;
        }
    }
    double rel = worst / (scale > 0 ? scale : 1.0);
    if (!(rel <= tol) && n)
        fprintf(stderr, "%s: max error %.3g at [%zu] (got %.8g want %.8g), max |want| %.4g\n", label,
                worst, at, got[at], want[at], scale);
    return rel;
}

ic_tensor tu_fixture_image(const ic_safetensors *st, const float mean[3], const float std[3],
                           ic_arena *a)
{
    const ic_st_tensor *img = ic_st_find(st, "image");
    ck_assert_msg(img && img->dtype == IC_ST_U8, "fixture has no uint8 tensor 'image'");
    ck_assert_int_eq((int)img->shape[1], 3);
    ic_tensor x;
    ck_assert_int_eq(ic_tensor_alloc(&x, a, (int)img->shape[0], 3, (int)img->shape[2],
                                     (int)img->shape[3]),
                     0);
    const uint8_t *px = img->raw;
    const size_t plane = ic_tensor_plane(&x);
    for (int n = 0; n < x.n; n++)
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < plane; i++) {
                const size_t k = ((size_t)n * 3 + c) * plane + i;
                x.data[k] = ((float)px[k] - mean[c]) / std[c];
            }
    return x;
}
