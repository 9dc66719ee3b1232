/* `instcal drift --suite synthcity`: how well the drift score
 * (calib/drift.h) separates source images from each shifted SynthCity
 * domain, and the alert threshold an operator could use (docs/drift.md).
 *
 * The evaluation sets are those of `instcal eval --suite` (seed 1000, the
 * same --root is shared); a second, held-out source set (seed 3000) sets
 * the threshold, a quantile of its scores, so that the false-alarm rate on
 * the evaluation source set is an honest estimate. Scores are cached per
 * model file, mode (and its revision after the first, calib.h) and set under
 * ROOT/drift/, so an interrupted run resumes where it stopped. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adapt/adapt.h"
#include "base/alloc.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/eval_common.h"
#include "infer/segment.h"
#include "metrics/auroc.h"

static const char usage[] =
    "usage: instcal drift --suite synthcity [options]\n"
    "  --model FILE       weights (default $INSTCAL_MODEL or models/default.safetensors)\n"
    "  --config FILE      model config (default: the one inside the weights)\n"
    "  --root DIR         the suite's sets, rendered if missing (default synthcity-eval)\n"
    "  --count N          images per set (default 200)\n"
    "  --size HxW         render size (default: the model's test size, else 128x256)\n"
    "  --modes LIST       calibration modes (default none,tbn,instcal-u,instcal-c; manual\n"
    "                     needs --m; tent works but is slow)\n"
    "  --m X              strength for manual\n"
    "  --quantile Q       threshold = this quantile of held-out source scores (default 0.99)\n"
    "  --markdown FILE    also write the tables as Markdown\n"
    "  --json FILE        also write every score summary as JSON\n";

#define N_SETS 8
/* set 0 sets the threshold; set 1 is the negative class of every AUROC */
static const char *const set_names[N_SETS] = {"source-holdout", "source", "fog1", "fog2",
                                              "fog3",           "night",  "rain", "style"};
static const char *const set_domain[N_SETS] = {"source", "source", "fog1", "fog2",
                                               "fog3",   "night",  "rain", "style"};

static int read_cache(const char *path, int count, double *s)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    int n = 0;
    while (n < count && fscanf(f, "%lf", &s[n]) == 1)
        n++;
    fclose(f);
    return n == count ? 0 : 1;
}

static int write_cache(const char *path, int count, const double *s)
{
    char tmp[8192];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return 1;
    for (int i = 0; i < count; i++)
        fprintf(f, "%.17g\n", s[i]);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return 1;
    return 0;
}

/* The drift score of each of the first `count` images of the set in dir,
 * through the service path (ic_segment_run, no encoded outputs). */
static int score_set(const ic_forward *fw, const char *dir, const ic_segment_opts *so, int count,
                     double *s, const char *label)
{
    char path[8192];
    snprintf(path, sizeof path, "%s/panoptic.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    json_t *images = json_object_get(root, "images");
    if ((int)json_array_size(images) < count) {
        fprintf(stderr, "%s: needs %d images\n", path, count);
        json_decref(root);
        return 1;
    }
    ic_arena arena;
    ic_arena_init(&arena, 0, 0);
    int status = 0;
    for (int i = 0; i < count && !status; i++) {
        const char *name = json_string_value(json_object_get(json_array_get(images, i), "file_name"));
        snprintf(path, sizeof path, "%s/images/%s", dir, name ? name : "");
        unsigned char *buf = NULL;
        size_t len = 0;
        ic_segment_result res;
        ic_arena_reset(&arena);
        if (!name || cli_read_file(path, (size_t)1 << 30, &buf, &len)) {
            status = 1;
        } else if (ic_segment_run(&res, fw, &arena, buf, len, so, NULL) != 0) {
            fprintf(stderr, "%s: %s\n", path, ic_error_message());
            status = 1;
        } else {
            s[i] = res.drift;
            ic_segment_result_deinit(&res);
        }
        ic_free(buf);
        if ((i + 1) % 50 == 0 || i + 1 == count)
            fprintf(stderr, "\r%s: %d/%d%s", label, i + 1, count, i + 1 == count ? "\n" : "");
    }
    ic_arena_deinit(&arena);
    json_decref(root);
    return status;
}

/* Per mode: the threshold, false alarms, and per shifted set the AUROC
 * against source, the fraction detected and the median score. */
typedef struct row {
    ic_calib_mode mode;
    double threshold, false_alarms;
    double auroc[N_SETS], detected[N_SETS], median[N_SETS];
} row;

static int summarise(row *r, double *const scores[N_SETS], int count, double q)
{
    double *tmp = ic_malloc(sizeof(double) * 2 * (size_t)count);
    if (!tmp)
        return 1;
    memcpy(tmp, scores[0], sizeof(double) * (size_t)count);
    int rc = ic_quantile(tmp, (size_t)count, q, &r->threshold);
    r->false_alarms = ic_fraction_above(scores[1], (size_t)count, r->threshold);
    for (int k = 0; k < N_SETS && !rc; k++) {
        memcpy(tmp, scores[k], sizeof(double) * (size_t)count);
        rc = ic_quantile(tmp, (size_t)count, 0.5, &r->median[k]);
        r->detected[k] = ic_fraction_above(scores[k], (size_t)count, r->threshold);
        if (!rc && k >= 2)
            rc = ic_auroc(scores[1], (size_t)count, scores[k], (size_t)count, tmp, &r->auroc[k]);
    }
    if (rc)
        fprintf(stderr, "%s\n", ic_error_message());
    ic_free(tmp);
    return rc != 0;
}

static void print_tables(FILE *f, const row *rows, int n_rows, int count, int h, int w, double q)
{
    fprintf(f, "| mode | threshold | false alarms |");
    for (int k = 2; k < N_SETS; k++)
        fprintf(f, " %s |", set_names[k]);
    fprintf(f, "\n|---|---|---|");
    for (int k = 2; k < N_SETS; k++)
        fprintf(f, "---|");
    fprintf(f, "\n");
    for (int r = 0; r < n_rows; r++) {
        fprintf(f, "| %s | %.4g | %.1f%% |", ic_calib_mode_name(rows[r].mode), rows[r].threshold,
                100 * rows[r].false_alarms);
        for (int k = 2; k < N_SETS; k++)
            fprintf(f, " %.3f / %.0f%% |", rows[r].auroc[k], 100 * rows[r].detected[k]);
        fprintf(f, "\n");
    }
    fprintf(f, "\nCells: AUROC of source against the domain / share of the domain's images above "
               "the threshold. Threshold: the %g quantile of %d held-out source images (seed "
               "3000); false alarms: share of the %d evaluation source images (seed 1000) above "
               "it. %dx%d images.\n\n",
            q, count, count, h, w);
    fprintf(f, "| mode | median score: source |");
    for (int k = 2; k < N_SETS; k++)
        fprintf(f, " %s |", set_names[k]);
    fprintf(f, "\n|---|---|");
    for (int k = 2; k < N_SETS; k++)
        fprintf(f, "---|");
    fprintf(f, "\n");
    for (int r = 0; r < n_rows; r++) {
        fprintf(f, "| %s | %.4g |", ic_calib_mode_name(rows[r].mode), rows[r].median[1]);
        for (int k = 2; k < N_SETS; k++)
            fprintf(f, " %.4g |", rows[r].median[k]);
        fprintf(f, "\n");
    }
}

static json_t *rows_json(const row *rows, int n_rows, const char *model, int count, double q)
{
    json_t *j = json_pack("{s:s,s:i,s:f}", "model", model, "count", count, "quantile", q);
    json_t *modes = json_object();
    for (int r = 0; r < n_rows; r++) {
        json_t *sets = json_object();
        for (int k = 1; k < N_SETS; k++) {
            json_t *c = json_pack("{s:f,s:f}", "median", rows[r].median[k], "above_threshold",
                                  rows[r].detected[k]);
            if (k >= 2)
                json_object_set_new(c, "auroc", json_real(rows[r].auroc[k]));
            json_object_set_new(sets, set_names[k], c);
        }
        json_object_set_new(modes, ic_calib_mode_name(rows[r].mode),
                            json_pack("{s:f,s:f,s:o}", "threshold", rows[r].threshold,
                                      "false_alarms", rows[r].false_alarms, "sets", sets));
    }
    json_object_set_new(j, "modes", modes);
    return j;
}

int cmd_drift(int argc, char **argv)
{
    const char *suite = NULL, *model = NULL, *config = NULL, *root = "synthcity-eval",
               *count_s = NULL, *size = NULL, *modes_s = "none,tbn,instcal-u,instcal-c",
               *m_s = NULL, *q_s = NULL, *md = NULL, *json_path = NULL;
    cli_opt opts[] = {{"suite", &suite, NULL}, {"model", &model, NULL}, {"config", &config, NULL},
                      {"root", &root, NULL},   {"count", &count_s, NULL}, {"size", &size, NULL},
                      {"modes", &modes_s, NULL}, {"m", &m_s, NULL}, {"quantile", &q_s, NULL},
                      {"markdown", &md, NULL}, {"json", &json_path, NULL}};
    int npos = 0, rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &npos, usage);
    if (rc)
        return rc == 1 ? 0 : 2;
    int count = 200;
    double q = 0.99, m = -1;
    if (!suite || strcmp(suite, "synthcity") || npos || cli_int("count", count_s, 2, 100000, &count) ||
        cli_double("quantile", q_s, 0, 1, &q) || cli_double("m", m_s, 0, 1, &m)) {
        fputs(usage, stderr);
        return 2;
    }
    if (!model)
        model = cli_default_model();
    unsigned long long hash;
    ic_pdl *net = NULL;
    if (cli_file_hash(model, &hash))
        return 1;
    if (ic_pdl_load(&net, model, config)) {
        fprintf(stderr, "cannot load model %s: %s\n", model, ic_error_message());
        return 1;
    }
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    int h = cfg->min_size_test > 0 ? cfg->min_size_test : 128, w = 2 * h;
    int status = 0;
    if (size && cli_size(size, &h, &w))
        status = 2;
    row rows[IC_CALIB_COUNT];
    int n_rows = 0;
    ic_calib_mode listed[IC_CALIB_COUNT];
    int n_listed = 0;
    if (!status && ic_calib_mode_parse_list(modes_s, listed, &n_listed)) {
        fprintf(stderr, "--modes: %s\n", ic_error_message());
        status = 2;
    }
    for (int i = 0; i < n_listed && !status; i++) {
        ic_calib_mode mode = listed[i];
        if (mode == IC_CALIB_MANUAL && m < 0) {
            fprintf(stderr, "--modes manual needs --m\n");
            status = 2;
        } else if (mode != IC_CALIB_TENT && !ic_pdl_supports(net, mode)) {
            fprintf(stderr, "skipping %s: the model does not carry its tensors\n",
                    ic_calib_mode_name(mode));
        } else {
            rows[n_rows++].mode = mode;
        }
    }
    char dir[4096], cache[4096];
    if (!status && mkdir(root, 0777) && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", root, strerror(errno));
        status = 1;
    }
    snprintf(cache, sizeof cache, "%s/drift", root);
    if (!status && mkdir(cache, 0777) && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", cache, strerror(errno));
        status = 1;
    }
    for (int k = 0; k < N_SETS && !status; k++) {
        snprintf(dir, sizeof dir, "%s/%s", root, set_names[k]);
        status = cli_suite_render_set(dir, set_domain[k], k == 0 ? 3000 : 1000, count, h, w);
    }
    double *scores = status ? NULL : ic_malloc(sizeof(double) * (size_t)count * N_SETS);
    if (!status && !scores)
        status = 1;
    for (int r = 0; r < n_rows && !status; r++) {
        ic_segment_opts so = {.calib = {.mode = rows[r].mode, .m = (float)m, .tent_steps = 1}};
        ic_tent *tent = NULL;
        double *sets[N_SETS];
        for (int k = 0; k < N_SETS && !status; k++) {
            sets[k] = scores + (size_t)k * count;
            char path[4200], label[64], mname[48];
            if (rows[r].mode == IC_CALIB_MANUAL)
                snprintf(mname, sizeof mname, "manual-%.3g", m);
            else
                ic_calib_mode_key(rows[r].mode, mname, sizeof mname);
            snprintf(path, sizeof path, "%s/%016llx.%s.%s.%dx%d.%d.txt", cache, hash, mname,
                     set_names[k], h, w, count);
            if (read_cache(path, count, sets[k]) == 0)
                continue;
            if (rows[r].mode == IC_CALIB_TENT && !tent &&
                ic_tent_create(&tent, model, config)) {
                fprintf(stderr, "cannot set up tent: %s\n", ic_error_message());
                status = 1;
                break;
            }
            ic_forward fw;
            if (ic_adapt_forward(&fw, net, tent, rows[r].mode)) {
                fprintf(stderr, "%s\n", ic_error_message());
                status = 1;
                break;
            }
            snprintf(dir, sizeof dir, "%s/%s", root, set_names[k]);
            snprintf(label, sizeof label, "%s %s", ic_calib_mode_name(rows[r].mode), set_names[k]);
            status = score_set(&fw, dir, &so, count, sets[k], label);
            if (!status && write_cache(path, count, sets[k]))
                fprintf(stderr, "warning: cannot write %s\n", path);
        }
        ic_tent_free(&tent);
        if (!status)
            status = summarise(&rows[r], sets, count, q);
    }
    if (!status) {
        print_tables(stdout, rows, n_rows, count, h, w, q);
        FILE *f = md ? fopen(md, "w") : NULL;
        if (md && !f) {
            fprintf(stderr, "cannot write %s\n", md);
            status = 1;
        } else if (f) {
            print_tables(f, rows, n_rows, count, h, w, q);
            fclose(f);
        }
    }
    if (!status && json_path) {
        json_t *j = rows_json(rows, n_rows, cfg->name, count, q);
        if (!j || json_dump_file(j, json_path, JSON_INDENT(1) | JSON_REAL_PRECISION(6))) {
            fprintf(stderr, "cannot write %s\n", json_path);
            status = 1;
        }
        json_decref(j);
    }
    ic_free(scores);
    ic_pdl_free(&net);
    return status;
}
