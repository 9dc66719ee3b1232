/* `instcal synth`: renders SynthCity datasets (COCO-panoptic layout, see
 * core/data/synth_writer.h) or, with --samples, one image per domain of a
 * single layout for the demo page. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "cli/commands.h"
#include "data/synth.h"
#include "data/synth_writer.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: instcal synth --out DIR [--domain D] [--count N] [--seed S] [--start I]\n"
            "                     [--size HxW] [--threads T]\n"
            "       instcal synth --samples DIR [--seed S] [--start I] [--size HxW]\n\n"
            "Renders procedural street scenes in COCO-panoptic layout: DIR/images,\n"
            "DIR/panoptic (ids R + 256 G + 65536 B), DIR/depth (16-bit cm) and\n"
            "DIR/panoptic.json. Scenes are a function of (seed, index): every domain of\n"
            "the same seed and indices shares the labels.\n\n"
            "  --domain D   source (default), fog1, fog2, fog3, night, rain, style\n"
            "  --count N    images to render (default 1)\n"
            "  --seed S     dataset seed (default 0)\n"
            "  --start I    first scene index (default 0)\n"
            "  --size HxW   image size (default %dx%d)\n"
            "  --threads T  worker threads (default 1)\n"
            "  --samples DIR  write one image per domain of scene --start, its labels\n"
            "               and samples.json (the demo page's samples)\n",
            IC_SYNTH_DEFAULT_H, IC_SYNTH_DEFAULT_W);
}

static int parse_u64(const char *s, unsigned long long *out)
{
    if (!s || !*s || *s == '-')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, int *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < -1000000000L || v > 1000000000L)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_size(const char *s, int *h, int *w)
{
    char tail;
    if (!s || sscanf(s, "%dx%d%c", h, w, &tail) != 2)
        return -1;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress(int done, int total, void *user)
{
    (void)user;
    if (done == total || done % 100 == 0)
        fprintf(stderr, "\rsynth: %d/%d", done, total);
    if (done == total)
        fputc('\n', stderr);
}

static const char *const titles[IC_SYNTH_NUM_DOMAINS] = {
    "Clear day (source)", "Light fog", "Medium fog", "Dense fog", "Night", "Rain", "Another city (style)",
};

/* One image per domain of one layout, its labels, and samples.json. */
static int write_samples(const char *dir, unsigned long long seed, unsigned long long index, int h, int w)
{
    ic_synth_sample s;
    int rc = ic_synth_mkdirs(dir);
    if (rc || (rc = ic_synth_sample_init(&s, h, w)))
        return rc;
    json_t *list = json_array();
    char path[4096];
    for (int d = 0; d < IC_SYNTH_NUM_DOMAINS && !rc; d++) {
        const char *name = ic_synth_domain_name((ic_synth_domain)d);
        rc = ic_synth_render(&s, seed, index, (ic_synth_domain)d);
        if (!rc) {
            snprintf(path, sizeof path, "%s/%s.png", dir, name);
            rc = ic_synth_write_rgb_png(&s, path);
        }
        if (!rc && d == IC_SYNTH_SOURCE) {
            snprintf(path, sizeof path, "%s/label_panoptic.png", dir);
            rc = ic_synth_write_ids_png(&s, path);
            snprintf(path, sizeof path, "%s/label_semantic.png", dir);
            if (!rc)
                rc = ic_synth_write_semantic_png(&s, path);
        }
        char file[64];
        snprintf(file, sizeof file, "%s.png", name);
        json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s}", "file", file, "label",
                                              "label_panoptic.png", "label_color", "label_semantic.png",
                                              "domain", name, "title", titles[d]));
    }
    if (!rc) {
        json_t *root = json_pack("{s:s, s:I, s:I, s:i, s:i, s:o}", "generator", "instcal synth --samples",
                                 "seed", (json_int_t)seed, "index", (json_int_t)index, "height", h,
                                 "width", w, "samples", list);
        snprintf(path, sizeof path, "%s/samples.json", dir);
        if (!root || json_dump_file(root, path, JSON_INDENT(2)) != 0)
            rc = ic_error_set(IC_EIO, "cannot write '%s'", path);
        json_decref(root);
    } else {
        json_decref(list);
    }
    ic_synth_sample_deinit(&s);
    return rc;
}

int cmd_synth(int argc, char **argv)
{
    ic_synth_write_opts o;
    memset(&o, 0, sizeof o);
    o.count = 1;
    o.threads = 1;
    o.h = IC_SYNTH_DEFAULT_H;
    o.w = IC_SYNTH_DEFAULT_W;
    const char *samples = NULL;
    unsigned long long seed = 0, start = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--out")) {
            o.out_dir = v;
            bad = !v;
        } else if (!strcmp(a, "--samples")) {
            samples = v;
            bad = !v;
        } else if (!strcmp(a, "--domain")) {
            if (!v || ic_synth_domain_parse(v, &o.domain)) {
                fprintf(stderr, "instcal synth: %s\n", v ? ic_error_message() : "--domain needs a value");
                return 2;
            }
        } else if (!strcmp(a, "--count")) {
            bad = parse_int(v, &o.count) || o.count < 1;
            if (bad) {
                fprintf(stderr, "instcal synth: --count must be a positive integer (got '%s')\n", v ? v : "");
                return 2;
            }
        } else if (!strcmp(a, "--seed")) {
            bad = parse_u64(v, &seed);
        } else if (!strcmp(a, "--start")) {
            bad = parse_u64(v, &start);
        } else if (!strcmp(a, "--threads")) {
            bad = parse_int(v, &o.threads) || o.threads < 1 || o.threads > 64;
        } else if (!strcmp(a, "--size")) {
            bad = parse_size(v, &o.h, &o.w);
            if (!bad && (o.h < IC_SYNTH_MIN_SIDE || o.w < IC_SYNTH_MIN_SIDE || o.h > IC_SYNTH_MAX_SIDE ||
                         o.w > IC_SYNTH_MAX_SIDE)) {
                fprintf(stderr, "instcal synth: --size %s: each side must be %d..%d pixels\n", v,
                        IC_SYNTH_MIN_SIDE, IC_SYNTH_MAX_SIDE);
                return 2;
            }
        } else {
            fprintf(stderr, "instcal synth: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "instcal synth: bad or missing value for %s\n", a);
            return 2;
        }
        i++;
    }
    o.seed = seed;
    o.start = start;
    if (samples) {
        if (write_samples(samples, seed, start, o.h, o.w)) {
            fprintf(stderr, "instcal synth: %s\n", ic_error_message());
            return 1;
        }
        return 0;
    }
    if (!o.out_dir) {
        fprintf(stderr, "instcal synth: --out DIR is required\n");
        usage(stderr);
        return 2;
    }
    double t0 = now_s();
    if (ic_synth_write_dataset(&o, progress, NULL)) {
        fprintf(stderr, "instcal synth: %s\n", ic_error_message());
        return 1;
    }
    double dt = now_s() - t0;
    fprintf(stderr, "synth: %d %s images %dx%d in %.2f s (%.1f images/s) -> %s\n", o.count,
            ic_synth_domain_name(o.domain), o.h, o.w, dt, (double)o.count / dt, o.out_dir);
    return 0;
}
