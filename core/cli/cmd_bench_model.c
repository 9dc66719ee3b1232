/* `instcal bench model`: times the whole calibrated forward,
 * ic_pdl_forward() with full-resolution outputs, once per calibration mode,
 * and prints one table with each mode's median and its cost over `none`.
 *
 * The machine this runs on is shared and noisy, so the modes are timed in
 * rotation: each repetition runs every mode once, and a mode's overhead is
 * the median over repetitions of (mode / none) within the same repetition.
 * A load change then hits both sides of a ratio alike, which a ratio of two
 * separately measured medians would not give.
 *
 * The comparison against ONNX Runtime lives in bench/ (export_onnx.py,
 * ort_bench.js, run_model_bench.sh): `--input` takes the raw float32 image
 * the exporter wrote and `--dump` writes the `none` outputs so that the ORT
 * script can check both runtimes computed the same thing. `--post` times
 * the post-processing of the `none` outputs the way `instcal segment` runs
 * it (softmax statistics, then ic_pano_run), to set it against the forward.
 * `--json` ends the output with one JSON line for the wrapper script. */
#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "infer/segment.h"
#include "model/pdl.h"
#include "ops/softmax.h"
#include "post/panoptic.h"

#define MAX_MODES IC_CALIB_COUNT
#define MAX_REPS 200

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of n values; sorts a copy so callers keep their order. */
static double median(const double *v, int n)
{
    double s[MAX_REPS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
}

/* Peak resident set of this process so far, in MiB (Linux reports KiB). */
static double peak_rss_mib(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return 0.0;
    return (double)ru.ru_maxrss / 1024.0;
}

/* A deterministic input with image-like statistics (smooth per-channel
 * gradients plus a hash noise, roughly zero mean and unit variance as the
 * normalised network input is), for runs without --input. */
static void synth_input(ic_tensor *x)
{
    uint32_t s = 12345u;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < x->h; y++)
            for (int xx = 0; xx < x->w; xx++) {
                s = s * 1664525u + 1013904223u;
                float noise = (float)(s >> 8) / 16777216.0f - 0.5f;
                float v = sinf(0.013f * (float)(y + 31 * c)) * cosf(0.007f * (float)xx) + 0.3f * noise;
                ic_tensor_at(x, 0, c)[(size_t)y * (size_t)x->w + (size_t)xx] = v;
            }
}

/* Reads exactly numel floats of raw little-endian float32 into x. */
static int read_input(const char *path, ic_tensor *x)
{
    unsigned char *buf = NULL;
    size_t len = 0, want = ic_tensor_numel(x) * sizeof(float);
    if (cli_read_file(path, want + 1, &buf, &len))
        return 1;
    if (len != want) {
        fprintf(stderr, "--input %s: %zu bytes, expected %zu (1x3x%dx%d float32)\n", path, len, want,
                x->h, x->w);
        ic_free(buf);
        return 1;
    }
    memcpy(x->data, buf, want);
    ic_free(buf);
    return 0;
}

/* Writes sem | center | offset as one raw float32 file (ort_bench.js --compare). */
static int dump_outputs(const char *path, const ic_pdl_outputs *o)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return 1;
    }
    const ic_tensor *t[3] = {&o->sem, &o->center, &o->offset};
    int bad = 0;
    for (int i = 0; i < 3; i++)
        bad |= fwrite(t[i]->data, sizeof(float), ic_tensor_numel(t[i]), f) != ic_tensor_numel(t[i]);
    bad |= fclose(f) != 0;
    if (bad)
        fprintf(stderr, "--dump %s: write failed\n", path);
    return bad;
}

/* Parses "none,instcal-u,..." into modes; skips (with a note) modes the
 * model cannot run, so one command works for models with and without
 * calibration tensors. `none` is always first: it is the reference. */
static int parse_modes(const char *list, const ic_pdl *net, ic_calib_mode *modes, int *n)
{
    ic_calib_mode listed[IC_CALIB_COUNT];
    int n_listed;
    if (ic_calib_mode_parse_list(list, listed, &n_listed)) {
        fprintf(stderr, "--modes: %s\n", ic_error_message());
        return 1;
    }
    modes[0] = IC_CALIB_NONE;
    *n = 1;
    for (int i = 0; i < n_listed; i++) {
        ic_calib_mode m = listed[i];
        if (m == IC_CALIB_NONE)
            continue;
        if (m == IC_CALIB_TENT) {
            /* tent changes the BN parameters per image; it is a baseline with
             * its own cost model, not a forward-only calibration */
            fprintf(stderr, "--modes: tent is not benchmarked here\n");
            return 1;
        }
        if (m == IC_CALIB_INSTCAL_E) {
            /* two forwards averaged: its cost is instcal-g's plus tbn's */
            fprintf(stderr, "--modes: instcal-e is the instcal-g and the mirrored tbn forwards "
                            "averaged; time those two instead\n");
            return 1;
        }
        if (!ic_pdl_supports(net, m)) {
            fprintf(stderr, "note: the model has no tensors for %s; skipped\n", ic_calib_mode_name(m));
            continue;
        }
        modes[(*n)++] = m; /* distinct and not none: fewer than IC_CALIB_COUNT */
    }
    return 0;
}

/* Times the post-processing of one forward's outputs as ic_segment_run's
 * postprocess() does it (softmax statistics over the logits, then
 * ic_pano_run), `reps` times; returns the median in seconds or < 0. */
static double time_post(const ic_pdl *net, const ic_pdl_outputs *o, ic_arena *arena, int reps,
                        int *n_centers, int *n_segments)
{
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    int h = o->sem.h, w = o->sem.w;
    size_t n = (size_t)h * (size_t)w;
    int things[IC_PDL_MAX_CLASSES];
    ic_pano_params pp;
    ic_segment_pano_params(&pp, things, cfg);
    double t[MAX_REPS];
    ic_arena_mark mark = ic_arena_get_mark(arena);
    for (int r = 0; r < reps; r++) {
        ic_arena_rewind(arena, mark);
        double t0 = now_s();
        int32_t *sem = ic_arena_alloc(arena, n * sizeof(int32_t));
        float *maxprob = ic_arena_floats(arena, n), *entropy = ic_arena_floats(arena, n);
        if (!sem || !maxprob || !entropy)
            return -1.0;
        if (ic_softmax_stats(sem, maxprob, entropy, &o->sem))
            return -1.0;
        ic_pano_inputs in = {.h = h, .w = w, .sem = sem, .center = o->center.data,
                             .offset = o->offset.data, .sem_scores = o->sem.data,
                             .sem_maxprob = maxprob};
        ic_pano_result res;
        if (ic_pano_run(&res, arena, &pp, &in)) {
            fprintf(stderr, "post-processing: %s\n", ic_error_message());
            return -1.0;
        }
        t[r] = now_s() - t0;
        *n_centers = res.n_centers;
        *n_segments = res.n_segments;
    }
    ic_arena_rewind(arena, mark);
    return median(t, reps);
}

static const char usage_text[] =
    "usage: instcal bench model [--model W.safetensors] [--size HxW] [--reps N]\n"
    "                           [--modes none,instcal-u,instcal-c,tbn] [--threads T]\n"
    "                           [--input X.f32] [--dump OUT.f32] [--post] [--json]\n"
    "                           [--engine nchw|blocked|exact]\n\n"
    "Times ic_pdl_forward() (full-resolution outputs) per calibration mode: one\n"
    "warm-up, then N repetitions (default 5) that each run every mode once.\n"
    "Prints the median ms per mode, the median of per-repetition ratios to\n"
    "`none`, the forward's peak activation bytes and the process's peak RSS.\n"
    "  --size     input HxW (default: the config's train crop)\n"
    "  --threads  OpenBLAS threads (default: OpenBLAS's own choice)\n"
    "  --input    raw float32 1x3xHxW normalised image (bench/export_onnx.py)\n"
    "  --dump     write the `none` outputs sem|center|offset as raw float32\n"
    "  --post     also time softmax statistics + panoptic post-processing\n"
    "  --json     end with one JSON line (bench/run_model_bench.sh)\n"
    "  --engine   the forward's implementation (model/pdl.h; default: $INSTCAL_ENGINE,\n"
    "             else blocked)\n";

int cmd_bench_model(int argc, char **argv)
{
    const char *model = NULL, *size = NULL, *reps_s = NULL, *modes_s = NULL, *threads_s = NULL;
    const char *input = NULL, *dump = NULL, *engine_s = NULL;
    int want_post = 0, want_json = 0, npos = 0;
    const cli_opt opts[] = {
        {"model", &model, NULL},   {"size", &size, NULL},       {"reps", &reps_s, NULL},
        {"modes", &modes_s, NULL}, {"threads", &threads_s, NULL}, {"input", &input, NULL},
        {"dump", &dump, NULL},     {"post", NULL, &want_post},  {"json", NULL, &want_json},
        {"engine", &engine_s, NULL},
    };
    int rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &npos, usage_text);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (npos) {
        fprintf(stderr, "instcal bench model: unexpected argument '%s'\n%s", argv[1], usage_text);
        return 2;
    }
    int reps = 5, threads = 0;
    if (cli_int("--reps", reps_s, 1, MAX_REPS, &reps) || cli_int("--threads", threads_s, 1, 256, &threads))
        return 2;
    if (!model)
        model = cli_default_model();
    if (threads > 0)
        openblas_set_num_threads(threads);
    ic_pdl_engine engine = ic_pdl_engine_default();
    if (engine_s && ic_pdl_engine_parse(engine_s, &engine)) {
        fprintf(stderr, "--engine: %s\n", ic_error_message());
        return 2;
    }

    double t_load = now_s();
    ic_pdl *net = NULL;
    if (ic_pdl_load(&net, model, NULL)) {
        fprintf(stderr, "cannot load model %s: %s\n", model, ic_error_message());
        return 1;
    }
    if (ic_pdl_set_engine(net, engine)) {
        fprintf(stderr, "engine %s: %s\n", ic_pdl_engine_name(engine), ic_error_message());
        ic_pdl_free(&net);
        return 1;
    }
    t_load = now_s() - t_load;
    double rss_loaded = peak_rss_mib();
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    int h = cfg->train_crop[0] > 0 ? cfg->train_crop[0] : 512;
    int w = cfg->train_crop[1] > 0 ? cfg->train_crop[1] : 1024;
    if (size && (sscanf(size, "%dx%d", &h, &w) != 2 || h < 16 || w < 16 || h > 8192 || w > 8192)) {
        fprintf(stderr, "--size: expected HxW between 16 and 8192, got '%s'\n", size);
        ic_pdl_free(&net);
        return 2;
    }
    ic_calib_mode modes[MAX_MODES];
    int n_modes = 0;
    if (parse_modes(modes_s ? modes_s : "none,instcal-u,instcal-c,tbn", net, modes, &n_modes)) {
        ic_pdl_free(&net);
        return 2;
    }

    ic_arena arena;
    ic_arena_init(&arena, 0, 0);
    ic_tensor x;
    int ret = 1;
    double t[MAX_MODES][MAX_REPS], ratio[MAX_MODES][MAX_REPS];
    double m_mu[MAX_MODES] = {0}, m_var[MAX_MODES] = {0};
    size_t peak[MAX_MODES] = {0};
    ic_pdl_outputs out;
    if (ic_tensor_alloc(&x, &arena, 1, 3, h, w)) {
        fprintf(stderr, "out of memory\n");
        goto done;
    }
    if (input ? read_input(input, &x) : (synth_input(&x), 0))
        goto done;
    ic_arena_mark base = ic_arena_get_mark(&arena);

    /* Warm-up: first-touch page faults of the arena blocks and the mmapped
     * weights, and the per-mode first calls, stay out of the medians. */
    for (int i = 0; i < n_modes; i++) {
        ic_calib_opts co = {.mode = modes[i]};
        ic_arena_rewind(&arena, base);
        if (ic_pdl_forward(net, &x, &co, 0, &arena, &out)) {
            fprintf(stderr, "forward (%s): %s\n", ic_calib_mode_name(modes[i]), ic_error_message());
            goto done;
        }
        peak[i] = out.peak_bytes;
        m_mu[i] = out.m_mu_mean;
        m_var[i] = out.m_var_mean;
        if (i == 0 && dump && dump_outputs(dump, &out))
            goto done;
    }
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < n_modes; i++) {
            /* alternate the order so no mode always runs right after `none` */
            int k = (r & 1) ? n_modes - 1 - i : i;
            ic_calib_opts co = {.mode = modes[k]};
            ic_arena_rewind(&arena, base);
            double t0 = now_s();
            if (ic_pdl_forward(net, &x, &co, 0, &arena, &out)) {
                fprintf(stderr, "forward: %s\n", ic_error_message());
                goto done;
            }
            t[k][r] = now_s() - t0;
        }
        for (int i = 0; i < n_modes; i++)
            ratio[i][r] = t[i][r] / t[0][r];
    }

    double post_s = -1.0;
    int n_centers = 0, n_segments = 0;
    if (want_post) {
        ic_calib_opts co = {.mode = IC_CALIB_NONE};
        ic_arena_rewind(&arena, base);
        if (ic_pdl_forward(net, &x, &co, 0, &arena, &out)) {
            fprintf(stderr, "forward: %s\n", ic_error_message());
            goto done;
        }
        if ((post_s = time_post(net, &out, &arena, reps, &n_centers, &n_segments)) < 0)
            goto done;
    }

    const char *core = getenv("OPENBLAS_CORETYPE");
    printf("model %s (%s), input 1x3x%dx%d, load %.0f ms\n", model, cfg->name, h, w, 1e3 * t_load);
    printf("engine %s; OpenBLAS %s, core %s, %d threads, OPENBLAS_CORETYPE=%s\n",
           ic_pdl_engine_name(ic_pdl_get_engine(net)), openblas_get_config(),
           openblas_get_corename(), openblas_get_num_threads(), core ? core : "(unset)");
    printf("%d reps after 1 warm-up; modes alternate within each rep; overhead = median of "
           "per-rep mode/none - 1\n\n", reps);
    printf("%-10s %10s %10s %10s %8s %8s %12s\n", "mode", "median ms", "min ms", "overhead", "m_mu",
           "m_var", "peak act MiB");
    for (int i = 0; i < n_modes; i++) {
        double mn = t[i][0];
        for (int r = 1; r < reps; r++)
            mn = t[i][r] < mn ? t[i][r] : mn;
        char ov[32] = "-";
        if (i)
            snprintf(ov, sizeof ov, "%+.1f%%", 100.0 * (median(ratio[i], reps) - 1.0));
        printf("%-10s %10.1f %10.1f %10s %8.3f %8.3f %12.1f\n", ic_calib_mode_name(modes[i]),
               1e3 * median(t[i], reps), 1e3 * mn, ov, m_mu[i], m_var[i], (double)peak[i] / 1048576.0);
    }
    double rss = peak_rss_mib();
    printf("\npeak RSS %.0f MiB (after loading the model: %.0f MiB; arena reserved %.0f MiB)\n", rss,
           rss_loaded, (double)arena.reserved / 1048576.0);
    if (want_post)
        printf("post-processing (softmax stats + panoptic) %.1f ms = %.1f%% of the `none` forward "
               "(%d centers, %d segments)\n",
               1e3 * post_s, 100.0 * post_s / median(t[0], reps), n_centers, n_segments);
    if (want_json) {
        printf("{\"runtime\":\"c\",\"engine\":\"%s\",\"model\":\"%s\",\"h\":%d,\"w\":%d,\"threads\":%d,\"reps\":%d,"
               "\"peak_rss_mib\":%.1f,\"rss_loaded_mib\":%.1f,\"post_ms\":%.3f,\"modes\":{",
               ic_pdl_engine_name(ic_pdl_get_engine(net)), cfg->name, h, w,
               openblas_get_num_threads(), reps, rss, rss_loaded,
               post_s < 0 ? -1.0 : 1e3 * post_s);
        for (int i = 0; i < n_modes; i++) {
            printf("%s\"%s\":{\"median_ms\":%.3f,\"ratio\":%.5f,\"peak_act_bytes\":%zu,\"times_ms\":[",
                   i ? "," : "", ic_calib_mode_name(modes[i]), 1e3 * median(t[i], reps),
                   median(ratio[i], reps), peak[i]);
            for (int r = 0; r < reps; r++)
                printf("%s%.3f", r ? "," : "", 1e3 * t[i][r]);
            printf("]}");
        }
        printf("}}\n");
    }
    ret = 0;
done:
    ic_arena_deinit(&arena);
    ic_pdl_free(&net);
    return ret;
}
