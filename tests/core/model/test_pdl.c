/* Whole-network golden test: the C Panoptic-DeepLab against the PyTorch
 * reference (tests/golden/pdl_torch.py via gen_model.py) for every
 * calibration mode, plus the loader's errors for missing, extra and
 * misshapen tensors. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "model/pdl.h"
#include "testutil.h"

static const char *weights_path(void)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s", tu_path("golden/fixtures/model_tiny_weights.safetensors"));
    return buf;
}

static int n_failed;

static void compare(const ic_safetensors *io, const char *name, const ic_tensor *got)
{
    const ic_st_tensor *want = tu_fixture_tensor(io, name);
    ck_assert_msg(want->numel == ic_tensor_numel(got), "%s: %zu values, want %zu", name,
                  ic_tensor_numel(got), want->numel);
    /* Tensor-wise relative error (see tu_max_rel_error); typically ~1e-5. */
    double rel = tu_max_rel_error(got->data, want->f32, want->numel, 1e-4, name);
    fprintf(stderr, "%-28s max error / max |value| = %.2e\n", name, rel);
    if (!(rel <= 1e-4))
        n_failed++;
}

START_TEST(test_modes_match_torch)
{
    ic_pdl *net = NULL;
    int rc = ic_pdl_load(&net, weights_path(), NULL);
    ck_assert_msg(rc == 0, "load: %s", ic_error_message());
    ck_assert(ic_pdl_supports(net, IC_CALIB_INSTCAL_U));
    ck_assert(ic_pdl_supports(net, IC_CALIB_INSTCAL_C));
    ic_safetensors *io = tu_fixture("model_tiny_io");
    float m = (float)atof(ic_st_metadata(io, "manual_m"));
    static const struct {
        const char *name;
        ic_calib_mode mode;
    } modes[] = {{"none", IC_CALIB_NONE},
                 {"tbn", IC_CALIB_TBN},
                 {"manual", IC_CALIB_MANUAL},
                 {"instcal-u", IC_CALIB_INSTCAL_U},
                 {"instcal-c", IC_CALIB_INSTCAL_C}};
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    /* every engine (model/pdl.h), the same tolerance */
    for (int e = IC_PDL_ENGINE_NCHW; e <= IC_PDL_ENGINE_EXACT; e++) {
        ck_assert_int_eq(ic_pdl_set_engine(net, (ic_pdl_engine)e), 0);
        fprintf(stderr, "engine %s\n", ic_pdl_engine_name((ic_pdl_engine)e));
        for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
            ic_arena_reset(&a);
            const ic_pdl_config *cfg = ic_pdl_get_config(net);
            ic_tensor x = tu_fixture_image(io, cfg->pixel_mean, cfg->pixel_std, &a);
            ic_calib_opts opts = {.mode = modes[i].mode, .m = m};
            ic_pdl_outputs out;
            rc = ic_pdl_forward(net, &x, &opts, IC_PDL_STRIDE4, &a, &out);
            ck_assert_msg(rc == 0, "%s: %s", modes[i].name, ic_error_message());
            char key[64];
            snprintf(key, sizeof key, "%s.sem_logits_s4", modes[i].name);
            compare(io, key, &out.sem);
            snprintf(key, sizeof key, "%s.center_s4", modes[i].name);
            compare(io, key, &out.center);
            snprintf(key, sizeof key, "%s.offset_s4", modes[i].name);
            compare(io, key, &out.offset);
            if (modes[i].mode == IC_CALIB_NONE) {
                ck_assert(out.m_mu_mean == 0.0);
            } else if (modes[i].mode == IC_CALIB_TBN) {
                ck_assert(out.m_mu_mean == 1.0);
            }
        }
    }
    /* Full resolution (x4 upsampling, offsets x4) for image 0 in `none`. */
    for (int e = IC_PDL_ENGINE_NCHW; e <= IC_PDL_ENGINE_EXACT; e++) {
        ck_assert_int_eq(ic_pdl_set_engine(net, (ic_pdl_engine)e), 0);
        ic_arena_reset(&a);
        const ic_pdl_config *cfg = ic_pdl_get_config(net);
        ic_tensor x = tu_fixture_image(io, cfg->pixel_mean, cfg->pixel_std, &a);
        x.n = 1;
        ic_calib_opts none = {.mode = IC_CALIB_NONE};
        ic_pdl_outputs out;
        ck_assert_int_eq(ic_pdl_forward(net, &x, &none, 0, &a, &out), 0);
        compare(io, "none.sem_logits", &out.sem);
        compare(io, "none.center", &out.center);
        compare(io, "none.offset", &out.offset);
        ck_assert_uint_gt(out.peak_bytes, 0);
    }
    ic_st_close(&io);
    ic_arena_deinit(&a);
    ic_pdl_free(&net);
    ck_assert_ptr_null(net);
    ck_assert_msg(n_failed == 0, "%d outputs differ from PyTorch", n_failed);
}
END_TEST

/* Rewrites the fixture weights, dropping tensors whose name contains `drop`,
 * reshaping `reshape` and adding `extra`. */
static void write_variant(const char *path, const char *drop, const char *reshape, const char *extra)
{
    ic_safetensors *st = NULL;
    ck_assert_int_eq(ic_st_open(&st, weights_path()), 0);
    ic_st_writer *w = NULL;
    ck_assert_int_eq(ic_st_writer_create(&w), 0);
    for (size_t i = 0; i < ic_st_count(st); i++) {
        const ic_st_tensor *t = ic_st_get(st, i);
        if (drop && strstr(t->name, drop))
            continue;
        int64_t shape[IC_ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        int nd = t->ndim;
        if (reshape && !strcmp(t->name, reshape)) {
            shape[0] = 1;
            shape[1] = (int64_t)t->numel;
            nd = 2;
        }
        ck_assert_int_eq(ic_st_writer_add_raw(w, t->name, t->dtype, t->raw, t->nbytes, nd, shape), 0);
    }
    if (extra) {
        float v = 1;
        int64_t s1[1] = {1};
        ck_assert_int_eq(ic_st_writer_add_f32(w, extra, &v, 1, s1), 0);
    }
    ck_assert_int_eq(ic_st_writer_set_metadata(w, "config", ic_st_metadata(st, "config")), 0);
    ck_assert_int_eq(ic_st_writer_save(w, path), 0);
    ic_st_writer_destroy(&w);
    ic_st_close(&st);
}

START_TEST(test_load_errors)
{
    char path[] = "/tmp/ic_pdl_test_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ic_pdl *net = NULL;

    write_variant(path, "backbone.res3.0.conv2.weight", NULL, NULL);
    ck_assert_int_eq(ic_pdl_load(&net, path, NULL), IC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "backbone.res3.0.conv2.weight"));

    write_variant(path, NULL, "sem_seg_head.predictor.weight", NULL);
    ck_assert_int_eq(ic_pdl_load(&net, path, NULL), IC_ESHAPE);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "sem_seg_head.predictor.weight"));

    write_variant(path, NULL, NULL, "backbone.res9.weight");
    ck_assert_int_eq(ic_pdl_load(&net, path, NULL), IC_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "backbone.res9.weight"));

    /* Half the calibration tensors of one kind: an error naming one. */
    write_variant(path, "res2.0.conv1.norm.calib_var", NULL, NULL);
    ck_assert_int_eq(ic_pdl_load(&net, path, NULL), IC_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "calib_var"));

    /* No calibration tensors at all: loads, and says those modes are unavailable. */
    write_variant(path, "instcal_c", NULL, NULL);
    ck_assert_int_eq(ic_pdl_load(&net, path, NULL), 0);
    ck_assert(ic_pdl_supports(net, IC_CALIB_INSTCAL_U));
    ck_assert(!ic_pdl_supports(net, IC_CALIB_INSTCAL_C));
    ic_arena a;
    ic_arena_init(&a, 0, 0);
    ic_tensor x;
    ck_assert_int_eq(ic_tensor_alloc(&x, &a, 1, 3, 32, 64), 0);
    memset(x.data, 0, ic_tensor_numel(&x) * sizeof(float));
    ic_calib_opts c = {.mode = IC_CALIB_INSTCAL_C};
    ic_pdl_outputs out;
    ck_assert_int_eq(ic_pdl_forward(net, &x, &c, 0, &a, &out), IC_EINVAL);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "not available"));
    ic_calib_opts bad_m = {.mode = IC_CALIB_MANUAL, .m = 1.5f};
    ck_assert_int_eq(ic_pdl_forward(net, &x, &bad_m, 0, &a, &out), IC_EINVAL);
    ic_tensor gray = x;
    gray.c = 1;
    ic_calib_opts none = {.mode = IC_CALIB_NONE};
    ck_assert_int_eq(ic_pdl_forward(net, &gray, &none, 0, &a, &out), IC_EINVAL);
    /* Odd sizes work: output is cropped back to the input size. */
    x.h = 37;
    x.w = 51;
    ck_assert_int_eq(ic_pdl_forward(net, &x, &none, 0, &a, &out), 0);
    ck_assert_int_eq(out.sem.h, 37);
    ck_assert_int_eq(out.sem.w, 51);
    ic_arena_deinit(&a);
    ic_pdl_free(&net);

    ck_assert_int_eq(ic_pdl_load(&net, "/nonexistent.safetensors", NULL), IC_EIO);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pdl");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_modes_match_torch);
    tcase_add_test(tc, test_load_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
