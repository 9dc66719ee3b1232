/* Whole-network golden test of R-52-DSConv (models/configs/cityscapes-r52-dsconv.json) against
 * the PyTorch reference, for the calibration modes none, tbn, instcal-u and instcal-c.
 *
 * The ~310 MB of random weights are not stored anywhere: this test and
 * tests/golden/gen_r52.py compute every tensor from its name with the same generator, bit for
 * bit, and only the input and the reference outputs are committed
 * (tests/golden/fixtures/model_r52_io.safetensors, written by gen_r52.py).
 *
 * Generator "pdl-splitmix20-v1" (keep in sync with gen_r52.py):
 *   seed(name) = FNV-1a 64 of the tensor's state_dict name (offset basis 0xcbf29ce484222325,
 *                prime 0x100000001b3)
 *   z_i        = splitmix64 finaliser of seed + (i + 1) * 0x9e3779b97f4a7c15 (mod 2^64),
 *                i = row-major element index
 *   u_i        = ((z_i >> 44) - 2^19) / 2^19, uniform on a 2^-19 grid in [-1, 1)
 *   value, by the name's ending (first rule that matches):
 *     .conv3.norm.weight                 0.1875 + 0.0625 u (small residual branches keep TBN
 *                                        on the 4x8 res4/res5 maps well conditioned)
 *     .norm.weight, .norm.running_var    0.75 + 0.25 u
 *     .norm.bias, .norm.running_mean     0.125 u
 *     .calib_mean, .calib_var            0.5 + 0.375 u
 *     .basis_mean, .basis_var            0.25 u
 *     other 4-d .weight (conv)           u * (float)sqrt(6 / fan_in), fan_in = shape[1..3]
 *     other 2-d .weight (InstCal-C MLP)  u * (float)sqrt(3 / shape[1])
 *     other .bias                        0.125 u
 *   All but the weight products are exact in float32; those are one float32 multiply.
 * The fixture's metadata names the generator, the input size, the ASPP pool kernel and an
 * order-independent checksum of all generated values, so a generator mismatch is reported as
 * such and not as an engine error. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "model/pdl.h"
#include "model/pdl_train.h"
#include "testutil.h"

#define GENERATOR "pdl-splitmix20-v1"

static uint64_t fnv1a64(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static float gen_u(uint64_t seed, uint64_t i)
{
    uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (float)((int64_t)(z >> 44) - (1 << 19)) * 0x1p-19f;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* Fills p with the generator's values; returns the checksum contribution. */
static uint64_t generate(ic_param *p)
{
    uint64_t seed = fnv1a64(p->name);
    float a, b; /* value = a + b * u, or u * b when a is NAN */
    if (ends_with(p->name, ".conv3.norm.weight")) {
        a = 0.1875f;
        b = 0.0625f;
    } else if (ends_with(p->name, ".norm.weight") || ends_with(p->name, ".norm.running_var")) {
        a = 0.75f;
        b = 0.25f;
    } else if (ends_with(p->name, ".norm.bias") || ends_with(p->name, ".norm.running_mean")) {
        a = 0.0f;
        b = 0.125f;
    } else if (ends_with(p->name, ".calib_mean") || ends_with(p->name, ".calib_var")) {
        a = 0.5f;
        b = 0.375f;
    } else if (ends_with(p->name, ".basis_mean") || ends_with(p->name, ".basis_var")) {
        a = 0.0f;
        b = 0.25f;
    } else if (ends_with(p->name, ".weight") && p->ndim == 4) {
        a = NAN;
        b = (float)sqrt(6.0 / (double)(p->shape[1] * p->shape[2] * p->shape[3]));
    } else if (ends_with(p->name, ".weight") && p->ndim == 2) {
        a = NAN;
        b = (float)sqrt(3.0 / (double)p->shape[1]);
    } else if (ends_with(p->name, ".bias")) {
        a = 0.0f;
        b = 0.125f;
    } else {
        ck_abort_msg("no generator rule for %s", p->name);
        return 0;
    }
    uint64_t bits_sum = 0;
    for (size_t i = 0; i < p->n; i++) {
        float u = gen_u(seed, i);
        float v = isnan(a) ? u * b : a + b * u;
        p->data[i] = v;
        uint32_t bits;
        memcpy(&bits, &v, sizeof bits);
        bits_sum += bits;
    }
    return seed * bits_sum;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_gt(n, 0);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* The generated model: config from models/configs with the fixture's pool kernel. */
static ic_pdl *build_model(const ic_safetensors *io)
{
    const char *gen = ic_st_metadata(io, "generator");
    ck_assert_msg(gen && !strcmp(gen, GENERATOR), "fixture generator %s, this test implements %s",
                  gen ? gen : "(none)", GENERATOR);
    const char *cfg_name = ic_st_metadata(io, "config");
    const char *pk = ic_st_metadata(io, "pool_kernel");
    ck_assert_ptr_nonnull(cfg_name);
    ck_assert_ptr_nonnull(pk);
    char rel[256];
    snprintf(rel, sizeof rel, "../models/configs/%s.json", cfg_name);
    char *json = read_text(tu_path(rel));
    ic_pdl_config cfg;
    ck_assert_msg(ic_pdl_config_parse(&cfg, json, strlen(json)) == 0, "config: %s", ic_error_message());
    int kh = 0, kw = 0;
    ck_assert_int_eq(sscanf(pk, "%d,%d", &kh, &kw), 2);
    ic_pdl_head_config *heads[2] = {&cfg.sem, &cfg.ins};
    for (int i = 0; i < 2; i++) {
        heads[i]->aspp_pool_global = 0;
        heads[i]->aspp_pool_kernel[0] = kh;
        heads[i]->aspp_pool_kernel[1] = kw;
    }
    ic_pdl *net = NULL;
    ck_assert_msg(ic_pdl_create(&net, &cfg, json, 1) == 0, "create: %s", ic_error_message());
    free(json);
    ck_assert_int_eq(ic_pdl_add_calibration(net, IC_CALIB_INSTCAL_U, cfg.u_init, 1), 0);
    ck_assert_int_eq(ic_pdl_add_calibration(net, IC_CALIB_INSTCAL_C, cfg.u_init, 1), 0);
    ic_param *params = NULL;
    int n = 0;
    ck_assert_int_eq(ic_pdl_params(net, &params, &n), 0);
    uint64_t sum = 0;
    size_t values = 0;
    for (int i = 0; i < n; i++) {
        sum += generate(&params[i]);
        values += params[i].n;
    }
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)sum);
    const char *want_n = ic_st_metadata(io, "tensors");
    const char *want_sum = ic_st_metadata(io, "checksum");
    fprintf(stderr, "generated %d tensors, %zu values, checksum %s\n", n, values, hex);
    ck_assert_msg(want_n && atoi(want_n) == n, "%d tensors generated, the fixture was made from %s", n,
                  want_n ? want_n : "?");
    ck_assert_msg(want_sum && !strcmp(want_sum, hex),
                  "generated weights differ from the fixture's (checksum %s, want %s): the generators "
                  "are out of sync",
                  hex, want_sum ? want_sum : "?");
    ck_assert_msg(ic_pdl_refold(net) == 0, "refold: %s", ic_error_message());
    return net;
}

static int n_failed;

static void compare(const ic_safetensors *io, const char *name, const float *got, size_t n)
{
    const ic_st_tensor *want = tu_fixture_tensor(io, name);
    ck_assert_msg(want->numel == n, "%s: %zu values, want %zu", name, n, want->numel);
    double rel = tu_max_rel_error(got, want->f32, n, 1e-4, name);
    fprintf(stderr, "%-26s max error / max |value| = %.2e\n", name, rel);
    if (!(rel <= 1e-4))
        n_failed++;
}

/* Every mode at stride 4 and `none` at full resolution on one engine. */
static void check_engine(ic_pdl *net, const ic_safetensors *io, ic_pdl_engine e, ic_arena *arena)
{
    ck_assert_int_eq(ic_pdl_set_engine(net, e), 0);
    fprintf(stderr, "engine %s\n", ic_pdl_engine_name(e));
    static const struct {
        const char *name;
        ic_calib_mode mode;
    } modes[] = {{"none", IC_CALIB_NONE},
                 {"tbn", IC_CALIB_TBN},
                 {"instcal-u", IC_CALIB_INSTCAL_U},
                 {"instcal-c", IC_CALIB_INSTCAL_C}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        ic_arena_reset(arena);
        const ic_pdl_config *cfg = ic_pdl_get_config(net);
        ic_tensor x = tu_fixture_image(io, cfg->pixel_mean, cfg->pixel_std, arena);
        ic_calib_opts opts = {.mode = modes[i].mode};
        ic_pdl_outputs out;
        int rc = ic_pdl_forward(net, &x, &opts, IC_PDL_STRIDE4, arena, &out);
        ck_assert_msg(rc == 0, "%s: %s", modes[i].name, ic_error_message());
        const ic_tensor *t[3] = {&out.sem, &out.center, &out.offset};
        static const char *const keys[3] = {"sem_logits_s4", "center_s4", "offset_s4"};
        for (int k = 0; k < 3; k++) {
            char key[64];
            snprintf(key, sizeof key, "%s.%s", modes[i].name, keys[k]);
            compare(io, key, t[k]->data, ic_tensor_numel(t[k]));
        }
    }
    /* Full resolution (x4 bilinear, offsets x4) in mode none, at the fixture's sample grid. */
    int off = 0, stride = 0;
    const char *sub = ic_st_metadata(io, "sub");
    ck_assert_ptr_nonnull(sub);
    ck_assert_int_eq(sscanf(sub, "%d,%d", &off, &stride), 2);
    ck_assert_int_gt(stride, 0);
    ic_arena_reset(arena);
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    ic_tensor x = tu_fixture_image(io, cfg->pixel_mean, cfg->pixel_std, arena);
    ic_calib_opts none = {.mode = IC_CALIB_NONE};
    ic_pdl_outputs out;
    ck_assert_int_eq(ic_pdl_forward(net, &x, &none, 0, arena, &out), 0);
    const ic_tensor *t[3] = {&out.sem, &out.center, &out.offset};
    static const char *const keys[3] = {"none.sem_logits_sub", "none.center_sub", "none.offset_sub"};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(t[k]->h, x.h);
        ck_assert_int_eq(t[k]->w, x.w);
        int sh = (x.h - off + stride - 1) / stride, sw = (x.w - off + stride - 1) / stride;
        size_t n = (size_t)t[k]->n * (size_t)t[k]->c * (size_t)sh * (size_t)sw;
        float *s = malloc(n * sizeof *s);
        ck_assert_ptr_nonnull(s);
        size_t j = 0;
        for (int b = 0; b < t[k]->n; b++)
            for (int c = 0; c < t[k]->c; c++)
                for (int y = off; y < x.h; y += stride)
                    for (int xx = off; xx < x.w; xx += stride)
                        s[j++] = t[k]->data[(((size_t)b * t[k]->c + c) * x.h + y) * x.w + xx];
        compare(io, keys[k], s, n);
        free(s);
    }
}

START_TEST(test_r52_matches_torch)
{
    ic_safetensors *io = tu_fixture("model_r52_io");
    ic_pdl *net = build_model(io);
    ck_assert(ic_pdl_supports(net, IC_CALIB_INSTCAL_U));
    ck_assert(ic_pdl_supports(net, IC_CALIB_INSTCAL_C));
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    /* every engine (model/pdl.h), the same tolerance */
    for (int e = IC_PDL_ENGINE_NCHW; e <= IC_PDL_ENGINE_EXACT; e++)
        check_engine(net, io, (ic_pdl_engine)e, &a);
    ic_arena_deinit(&a);
    ic_pdl_free(&net);
    ic_st_close(&io);
    ck_assert_msg(n_failed == 0, "%d outputs differ from PyTorch", n_failed);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pdl_r52_golden");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_r52_matches_torch);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
