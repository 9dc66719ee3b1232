/* `instcal eval --suite synthcity|robust`: the paper-style cross-domain
 * tables.
 *
 * synthcity: validation sets of every SynthCity domain, rendered from the
 * same layouts (seed 1000) if missing.
 * robust: the held-out corruption suite (core/corrupt): fresh source scenes
 * of a seed no training uses (5000), clean and under each corruption family
 * (noise, blur, weather, digital) at severities 1, 3 and 5; image i of a
 * cell gets the family's (i mod size)-th corruption.
 * The `manual` strength is chosen on strongly augmented source images (seed
 * 2000), never on a target domain. Every calibration mode the model
 * supports is then evaluated on every domain: mIoU / PQ / ECE per cell,
 * forward milliseconds per image per row, and the mean over the shifted
 * domains (all but the first).
 *
 * Every cell scores the first --count images of its set (a set rendered
 * earlier with more images is not scored whole; one with fewer is refused).
 *
 * With --cells DIR every measured cell (and the manual m) is also written to
 * its own file there as soon as it is done, keyed by a hash of the model
 * file, the image count and size, the mode (ic_calib_mode_key: with its
 * revision after the first) and m; a later run with the same
 * key reads it back instead of measuring again, so a long sweep that is
 * stopped resumes where it was. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapt/adapt.h"
#include "augment/policy.h"
#include "base/alloc.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/eval_common.h"
#include "data/synth.h"
#include "data/synth_writer.h"
#include "image/coco.h"
#include "image/png.h"
#include "infer/result_json.h"

static const char usage[] =
    "usage: instcal eval --suite synthcity|robust [options]\n"
    "  --model FILE       weights (default $INSTCAL_MODEL or models/default.safetensors)\n"
    "  --config FILE      model config (default: the one inside the weights)\n"
    "  --root DIR         where the validation sets live / are rendered (default synthcity-eval\n"
    "                     or robust-eval)\n"
    "  --count N          images per domain (default 200)\n"
    "  --aug-count N      augmented source images for choosing manual m (default 100)\n"
    "  --size HxW         render size (default: the model's test size, else 128x256)\n"
    "  --rows LIST        modes (default\n"
    "                     none,manual,tbn,instcal-u,instcal-c,tent,instcal-g,instcal-e)\n"
    "  --markdown FILE    also write the table as Markdown\n"
    "  --json FILE        also write every number as JSON\n"
    "  --cells DIR        keep each finished cell in DIR/<mode>@<domain>.json and reuse it\n"
    "                     when the model, count, size and m match (resumable sweeps)\n";

#define MAX_DOMAINS 16
#define SYNTH_DOMAINS 7
static const char *const synth_domains[SYNTH_DOMAINS] = {"source", "fog1", "fog2", "fog3",
                                                        "night",  "rain", "style"};
/* the robust suite: its seed (never used in training) and severities */
#define ROBUST_SEED 5000
static const int robust_sev[3] = {1, 3, 5};

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int cli_suite_render_set(const char *dir, const char *domain, uint64_t seed, int count, int h, int w)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/panoptic.json", dir);
    if (exists(path)) {
        /* A set rendered at another size would be scored against labels of
         * that size without a word; refuse it instead. */
        ic_coco *coco = NULL;
        if (ic_coco_open(&coco, dir)) {
            fprintf(stderr, "%s: use another --root or remove that directory\n",
                    ic_error_message());
            return 1;
        }
        const ic_coco_image *im = ic_coco_get(coco, 0);
        int iw = im ? im->width : 0, ih = im ? im->height : 0, n = ic_coco_count(coco);
        ic_coco_free(&coco);
        if (iw != w || ih != h) {
            fprintf(stderr,
                    "%s holds %dx%d images but the suite needs %dx%d: "
                    "use another --root or remove that directory\n",
                    dir, ih, iw, h, w);
            return 1;
        }
        /* A larger set is fine (the first count images are scored); a
         * smaller one would be scored as if it had count images. */
        if (n < count) {
            fprintf(stderr,
                    "%s holds %d images but %d were asked for: "
                    "use another --root or remove that directory\n",
                    dir, n, count);
            return 1;
        }
        return 0;
    }
    ic_synth_write_opts o = {.out_dir = dir, .seed = seed, .count = count, .h = h, .w = w, .threads = 2};
    if (ic_synth_domain_parse(domain, &o.domain) || ic_synth_write_dataset(&o, NULL, NULL)) {
        fprintf(stderr, "rendering %s: %s\n", dir, ic_error_message());
        return 1;
    }
    fprintf(stderr, "rendered %d %s images into %s\n", count, domain, dir);
    return 0;
}

/* Source images with the training-time strong photometric augmentation
 * (no geometry, so labels stay valid): the data on which `manual` picks m. */
static int augment_set(const char *dir, int count)
{
    char marker[4096];
    snprintf(marker, sizeof marker, "%s/AUGMENTED", dir);
    if (exists(marker))
        return 0;
    ic_aug_strong_params p = ic_aug_strong_params_default();
    p.geometric = 0;
    p.p_identity = 0;
    for (int i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/images/%06d.png", dir, i);
        unsigned char *buf = NULL, *out = NULL;
        size_t len = 0, out_len = 0;
        ic_image img = {0};
        ic_image_decode_opts d = {.channels = 3};
        ic_aug_rng rng;
        ic_aug_rng_seed(&rng, 2000, (uint64_t)i);
        int rc = cli_read_file(path, (size_t)1 << 28, &buf, &len);
        if (!rc)
            rc = ic_image_decode(buf, len, &d, &img) || ic_aug_strong(&rng, &img, NULL, &p) ||
                 ic_image_encode_png(&img, NULL, &out, &out_len);
        FILE *f = rc ? NULL : fopen(path, "wb");
        if (!rc && (!f || fwrite(out, 1, out_len, f) != out_len))
            rc = 1;
        if (f)
            fclose(f);
        ic_free(buf);
        ic_free(out);
        ic_image_free(&img);
        if (rc) {
            fprintf(stderr, "augmenting %s failed: %s\n", path, ic_error_message());
            return 1;
        }
    }
    FILE *f = fopen(marker, "w");
    if (f)
        fclose(f);
    return 0;
}

typedef struct cell {
    double miou, pq, ece, ms;
    json_t *j; /* the cell's summary (ic_eval_summary_json) with forward_ms */
} cell;

/* A cached JSON object of `path` whose "key" is `key`, or NULL. */
static json_t *cache_load(const char *path, const char *key)
{
    if (!path)
        return NULL;
    json_t *j = json_load_file(path, 0, NULL);
    const char *k = json_string_value(json_object_get(j, "key"));
    if (!k || strcmp(k, key)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* Writes j (with "key" set) to path atomically; steals j. */
static int cache_store(const char *path, const char *key, json_t *j)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    json_object_set_new(j, "key", json_string(key));
    int rc = json_dump_file(j, tmp, JSON_INDENT(1) | JSON_REAL_PRECISION(6)) || rename(tmp, path);
    json_decref(j);
    if (rc)
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
    return rc;
}

static double jnum(const json_t *o, const char *a, const char *b)
{
    const json_t *v = json_object_get(o, a);
    return json_number_value(b ? json_object_get(v, b) : v);
}

int cmd_eval_suite(int argc, char **argv)
{
    const char *suite = NULL, *model = NULL, *config = NULL, *root = NULL,
               *count_s = NULL, *aug_s = NULL, *size = NULL,
               *rows_s = "none,manual,tbn,instcal-u,instcal-c,tent,instcal-g,instcal-e", *md = NULL, *json_path = NULL,
               *cells = NULL;
    cli_opt opts[] = {{"suite", &suite, NULL}, {"model", &model, NULL}, {"config", &config, NULL},
                      {"root", &root, NULL}, {"count", &count_s, NULL}, {"aug-count", &aug_s, NULL},
                      {"size", &size, NULL}, {"rows", &rows_s, NULL}, {"markdown", &md, NULL},
                      {"json", &json_path, NULL}, {"cells", &cells, NULL}};
    int npos = 0, rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &npos, usage);
    if (rc)
        return rc == 1 ? 0 : 2;
    int count = 200, aug_count = 100;
    if (!suite || (strcmp(suite, "synthcity") && strcmp(suite, "robust")) || npos ||
        cli_int("count", count_s, 1, 100000, &count) ||
        cli_int("aug-count", aug_s, 1, 100000, &aug_count)) {
        fputs(usage, stderr);
        return 2;
    }
    const int robust = !strcmp(suite, "robust");
    if (!root)
        root = robust ? "robust-eval" : "synthcity-eval";
    char dnames[MAX_DOMAINS][32];
    int n_dom = 0;
    if (robust) {
        snprintf(dnames[n_dom++], 32, "clean");
        for (int f = 0; f < IC_CORRUPT_FAMILIES; f++)
            for (int k = 0; k < 3; k++)
                snprintf(dnames[n_dom++], 32, "%s-%d", ic_corruption_family_name(f), robust_sev[k]);
    } else {
        for (int d = 0; d < SYNTH_DOMAINS; d++)
            snprintf(dnames[n_dom++], 32, "%s", synth_domains[d]);
    }
    if (!model)
        model = cli_default_model();
    ic_pdl *net = NULL;
    if (ic_pdl_load(&net, model, config)) {
        fprintf(stderr, "cannot load model %s: %s\n", model, ic_error_message());
        return 1;
    }
    /* the rows first: a typo is reported before minutes of rendering */
    ic_calib_mode listed[IC_CALIB_COUNT], rows[IC_CALIB_COUNT];
    int n_listed = 0, n_rows = 0;
    if (ic_calib_mode_parse_list(rows_s, listed, &n_listed)) {
        fprintf(stderr, "--rows: %s\n", ic_error_message());
        ic_pdl_free(&net);
        return 2;
    }
    for (int i = 0; i < n_listed; i++) {
        if (listed[i] == IC_CALIB_TENT || ic_pdl_supports(net, listed[i]))
            rows[n_rows++] = listed[i];
        else
            fprintf(stderr, "skipping %s: the model does not carry its tensors\n",
                    ic_calib_mode_name(listed[i]));
    }
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    int h = cfg->min_size_test > 0 ? cfg->min_size_test : 128, w = 2 * h;
    if (size && (sscanf(size, "%dx%d", &h, &w) != 2 || h < 16 || w < 16)) {
        fprintf(stderr, "--size must be HxW\n");
        ic_pdl_free(&net);
        return 2;
    }
    if (mkdir(root, 0777) && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", root, strerror(errno));
        ic_pdl_free(&net);
        return 1;
    }
    unsigned long long fnv = 0;
    if (cells && mkdir(cells, 0777) && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", cells, strerror(errno));
        ic_pdl_free(&net);
        return 1;
    }
    if (cells && cli_file_hash(model, &fnv)) {
        ic_pdl_free(&net);
        return 1;
    }
    char dir[2048];
    int status = 0;
    char clean[2048];
    snprintf(clean, sizeof clean, "%s/%s", root, dnames[0]);
    for (int d = 0; d < n_dom && !status; d++) {
        snprintf(dir, sizeof dir, "%s/%s", root, dnames[d]);
        if (!robust) {
            status = cli_suite_render_set(dir, dnames[d], 1000, count, h, w);
        } else if (d == 0) {
            status = cli_suite_render_set(dir, "source", ROBUST_SEED, count, h, w);
        } else {
            /* an existing set made from this clean set is kept */
            char marker[2100];
            snprintf(marker, sizeof marker, "%s/panoptic.json", dir);
            int f = (d - 1) / 3, sev = robust_sev[(d - 1) % 3];
            if (!exists(marker)) {
                status = cli_corrupt_set(clean, dir, IC_CORRUPT_COUNT, f, sev, ROBUST_SEED);
                if (!status)
                    fprintf(stderr, "corrupted %d images into %s\n", count, dir);
            }
        }
    }
    char augdir[2048];
    snprintf(augdir, sizeof augdir, "%s/source-aug", root);
    if (!status)
        status = cli_suite_render_set(augdir, "source", 2000, aug_count, h, w) || augment_set(augdir, aug_count);

    ic_tent *tent = NULL;
    float best_m = 0;
    char key[256], path[4200];
    for (int r = 0; r < n_rows && !status; r++)
        if (rows[r] == IC_CALIB_MANUAL) {
            /* m on augmented source data only (never a target domain). */
            snprintf(key, sizeof key, "model %016llx aug %d size %dx%d", fnv,
                     aug_count, h, w);
            snprintf(path, sizeof path, "%s/manual_m.json", cells ? cells : "");
            json_t *cached = cache_load(cells ? path : NULL, key);
            if (cached) {
                best_m = (float)jnum(cached, "manual_m", NULL);
                fprintf(stderr, "manual m = %.1f (from %s)\n", best_m, path);
                json_decref(cached);
                break;
            }
            double best = -1;
            json_t *sweep = json_object();
            fprintf(stderr, "choosing m on %s:", augdir);
            for (int k = 0; k <= 10 && !status; k++) {
                ic_segment_opts so = {.calib = {.mode = IC_CALIB_MANUAL, .m = k / 10.0f}};
                ic_eval_summary s;
                double ips, fms;
                ic_forward plain = ic_forward_plain(net);
                status = cli_eval_dataset(&plain, augdir, &so, aug_count, 1, &s, &ips, &fms);
                if (status)
                    break;
                fprintf(stderr, " %.1f:%.2f", k / 10.0, 100 * s.miou);
                char mk[8];
                snprintf(mk, sizeof mk, "%.1f", k / 10.0);
                json_object_set_new(sweep, mk, json_real(s.miou));
                if (s.miou > best + 1e-9) {
                    best = s.miou;
                    best_m = k / 10.0f;
                }
            }
            if (!status)
                fprintf(stderr, "\nmanual m = %.1f\n", best_m);
            if (!status && cells)
                status = cache_store(path, key,
                                     json_pack("{s:f, s:o}", "manual_m", (double)best_m,
                                               "miou_by_m", json_incref(sweep)));
            json_decref(sweep);
        }
    cell table[IC_CALIB_COUNT][MAX_DOMAINS];
    memset(table, 0, sizeof table);
    for (int r = 0; r < n_rows && !status; r++) {
        ic_segment_opts so = {.calib = {.mode = rows[r], .m = best_m, .tent_steps = 1}};
        const char *mname = ic_calib_mode_name(rows[r]);
        char mkey[48];
        ic_calib_mode_key(rows[r], mkey, sizeof mkey);
        for (int d = 0; d < n_dom && !status; d++) {
            cell *c = &table[r][d];
            /* m matters to manual only, the steps to tent only */
            snprintf(key, sizeof key, "model %016llx count %d size %dx%d mode %s m %.2f tent_steps %d",
                     fnv, count, h, w, mkey,
                     rows[r] == IC_CALIB_MANUAL ? best_m : 0.0,
                     rows[r] == IC_CALIB_TENT ? so.calib.tent_steps : 0);
            snprintf(path, sizeof path, "%s/%s@%s.json", cells ? cells : "", mname, dnames[d]);
            c->j = cache_load(cells ? path : NULL, key);
            int cached = c->j != NULL;
            if (!cached) {
                if (rows[r] == IC_CALIB_TENT && !tent && ic_tent_create(&tent, model, config)) {
                    fprintf(stderr, "cannot set up tent: %s\n", ic_error_message());
                    status = 1;
                    break;
                }
                ic_forward fw;
                if (ic_adapt_forward(&fw, net, tent, rows[r])) {
                    fprintf(stderr, "%s\n", ic_error_message());
                    status = 1;
                    break;
                }
                snprintf(dir, sizeof dir, "%s/%s", root, dnames[d]);
                ic_eval_summary s;
                double ips, ms;
                status = cli_eval_dataset(&fw, dir, &so, count, 1, &s, &ips, &ms);
                if (status)
                    break;
                c->j = ic_eval_summary_json(&s, cfg);
                json_object_set_new(c->j, "forward_ms", json_real(ms));
                if (cells)
                    status = cache_store(path, key, json_incref(c->j));
            }
            c->miou = jnum(c->j, "miou", NULL);
            c->pq = jnum(c->j, "pq", "pq");
            c->ece = jnum(c->j, "ece", NULL);
            c->ms = jnum(c->j, "forward_ms", NULL);
            json_object_del(c->j, "key");
            fprintf(stderr, "%-10s %-9s mIoU %6.2f  PQ %6.2f  ECE %6.2f  %.1f ms%s\n", mname,
                    dnames[d], 100 * c->miou, 100 * c->pq, 100 * c->ece, c->ms,
                    cached ? "  (from --cells)" : "");
        }
        ic_tent_free(&tent);
    }
    if (!status) {
        FILE *outs[2] = {stdout, md ? fopen(md, "w") : NULL};
        if (md && !outs[1]) {
            fprintf(stderr, "cannot write %s\n", md);
            status = 1;
        }
        for (int o = 0; o < 2; o++) {
            FILE *f = outs[o];
            if (!f)
                continue;
            fprintf(f, "| mode | ");
            for (int d = 0; d < n_dom; d++)
                fprintf(f, "%s | ", dnames[d]);
            fprintf(f, "mean shifted | ms/img |\n|---|");
            for (int d = 0; d <= n_dom + 1; d++)
                fprintf(f, "---|");
            fprintf(f, "\n");
            for (int r = 0; r < n_rows; r++) {
                if (rows[r] == IC_CALIB_MANUAL)
                    fprintf(f, "| manual (m=%.1f) | ", best_m);
                else
                    fprintf(f, "| %s | ", ic_calib_mode_name(rows[r]));
                double mi = 0, pq = 0, ece = 0, ms = 0;
                for (int d = 0; d < n_dom; d++) {
                    const cell *c = &table[r][d];
                    fprintf(f, "%.1f / %.1f / %.1f | ", 100 * c->miou, 100 * c->pq, 100 * c->ece);
                    if (d > 0) {
                        mi += c->miou;
                        pq += c->pq;
                        ece += c->ece;
                    }
                    ms += c->ms;
                }
                fprintf(f, "%.1f / %.1f / %.1f | %.1f |\n", 100 * mi / (n_dom - 1),
                        100 * pq / (n_dom - 1), 100 * ece / (n_dom - 1), ms / n_dom);
            }
            fprintf(f, "\nCells: mIoU / PQ / ECE (%%), %d images per domain at %dx%d; ms/img is the "
                       "mean forward time (network only) per image.\n",
                    count, h, w);
        }
        if (outs[1])
            fclose(outs[1]);
    }
    if (!status && json_path) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(cfg->name));
        json_object_set_new(j, "suite", json_string(suite));
        json_object_set_new(j, "manual_m", json_real(best_m));
        json_t *rj = json_object();
        for (int r = 0; r < n_rows; r++) {
            json_t *dj = json_object();
            for (int d = 0; d < n_dom; d++)
                json_object_set(dj, dnames[d], table[r][d].j);
            json_object_set_new(rj, ic_calib_mode_name(rows[r]), dj);
        }
        json_object_set_new(j, "rows", rj);
        if (json_dump_file(j, json_path, JSON_INDENT(1) | JSON_REAL_PRECISION(6)))
            status = 1;
        json_decref(j);
    }
    for (int r = 0; r < n_rows; r++)
        for (int d = 0; d < n_dom; d++)
            json_decref(table[r][d].j);
    ic_pdl_free(&net);
    return status;
}
