/* `instcal corrupt`: a corrupted copy of a COCO-panoptic set (core/corrupt:
 * the held-out robustness corruptions, never used in training). Images are
 * corrupted, labels copied unchanged; panoptic.json's info records what was
 * done and every image's corruption. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/err.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "corrupt/corrupt.h"
#include "image/png.h"

static const char usage[] =
    "usage: instcal corrupt --in DIR --out DIR --corruption NAME --severity S [--seed S]\n"
    "  --in DIR           COCO-panoptic set (panoptic.json, images/, panoptic/), e.g. from\n"
    "                     instcal synth\n"
    "  --out DIR          the corrupted copy (labels unchanged)\n"
    "  --corruption NAME  one corruption, or a family (noise, blur, weather, digital): image i\n"
    "                     then gets the family's (i mod size)-th corruption\n"
    "  --severity S       1..5 (ImageNet-C's scale)\n"
    "  --seed S           randomness of the corruptions (default 0)\n";

static int write_file(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(buf, 1, len, f) == len;
    if (f && fclose(f))
        ok = 0;
    if (!ok)
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
    return !ok;
}

/* Hard link, else copy. */
static int link_or_copy(const char *from, const char *to)
{
    unlink(to);
    if (!link(from, to))
        return 0;
    unsigned char *buf = NULL;
    size_t len = 0;
    if (cli_read_file(from, (size_t)1 << 28, &buf, &len))
        return 1;
    int rc = write_file(to, buf, len);
    ic_free(buf);
    return rc;
}

int cli_corrupt_set(const char *in, const char *out, ic_corruption c, int family, int severity,
                    uint64_t seed)
{
    char path[4096], path2[4096];
    snprintf(path, sizeof path, "%s/panoptic.json", in);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    json_t *images = root ? json_object_get(root, "images") : NULL;
    json_t *anns = root ? json_object_get(root, "annotations") : NULL;
    if (!json_is_array(images) || !json_is_array(anns)) {
        fprintf(stderr, "%s: not a COCO-panoptic file (%s)\n", path, root ? "no images" : je.text);
        json_decref(root);
        return 1;
    }
    int status = 0;
    const char *subs[2] = {"images", "panoptic"};
    if (mkdir(out, 0777) && errno != EEXIST)
        status = 1;
    for (int s = 0; s < 2 && !status; s++) {
        snprintf(path, sizeof path, "%s/%s", out, subs[s]);
        if (mkdir(path, 0777) && errno != EEXIST)
            status = 1;
    }
    if (status) {
        fprintf(stderr, "cannot create %s: %s\n", out, strerror(errno));
        json_decref(root);
        return 1;
    }
    json_t *which = json_array();
    size_t i;
    json_t *im;
    json_array_foreach(images, i, im) {
        const char *fn = json_string_value(json_object_get(im, "file_name"));
        ic_corruption ci = family >= 0 ? ic_corruption_of_family(family, (int)i) : c;
        json_array_append_new(which, json_string(ic_corruption_name(ci)));
        snprintf(path, sizeof path, "%s/images/%s", in, fn ? fn : "");
        unsigned char *buf = NULL, *enc = NULL;
        size_t len = 0, enc_len = 0;
        ic_image img = {0};
        ic_image_decode_opts d = {.channels = 3};
        int rc = !fn || cli_read_file(path, (size_t)1 << 28, &buf, &len);
        if (!rc)
            rc = ic_image_decode(buf, len, &d, &img) ||
                 ic_corrupt(&img, ci, severity, seed * 1000003u + i) ||
                 ic_image_encode_png(&img, NULL, &enc, &enc_len);
        snprintf(path2, sizeof path2, "%s/images/%s", out, fn ? fn : "");
        if (!rc)
            rc = write_file(path2, enc, enc_len);
        ic_free(buf);
        ic_free(enc);
        ic_image_free(&img);
        if (rc) {
            fprintf(stderr, "corrupting %s: %s\n", path, ic_error_message());
            status = 1;
            break;
        }
    }
    json_t *an;
    json_array_foreach(anns, i, an) {
        if (status)
            break;
        const char *fn = json_string_value(json_object_get(an, "file_name"));
        snprintf(path, sizeof path, "%s/panoptic/%s", in, fn ? fn : "");
        snprintf(path2, sizeof path2, "%s/panoptic/%s", out, fn ? fn : "");
        if (!fn || link_or_copy(path, path2)) {
            fprintf(stderr, "cannot copy %s\n", path);
            status = 1;
        }
    }
    if (!status) {
        json_t *info = json_object_get(root, "info");
        if (!json_is_object(info)) {
            info = json_object();
            json_object_set_new(root, "info", info);
        }
        json_object_set_new(info, "corruption",
                            json_string(family >= 0 ? ic_corruption_family_name(family)
                                                    : ic_corruption_name(c)));
        json_object_set_new(info, "severity", json_integer(severity));
        json_object_set_new(info, "corruption_seed", json_integer((json_int_t)seed));
        json_object_set_new(info, "image_corruptions", which);
        which = NULL;
        snprintf(path, sizeof path, "%s/panoptic.json", out);
        if (json_dump_file(root, path, JSON_INDENT(1))) {
            fprintf(stderr, "cannot write %s\n", path);
            status = 1;
        }
    }
    json_decref(which);
    json_decref(root);
    return status;
}

int cmd_corrupt(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *name = NULL, *sev_s = NULL, *seed_s = NULL;
    cli_opt opts[] = {{"in", &in, NULL}, {"out", &out, NULL}, {"corruption", &name, NULL},
                      {"severity", &sev_s, NULL}, {"seed", &seed_s, NULL}};
    int npos = 0, rc = cli_parse(argc, argv, opts, sizeof opts / sizeof opts[0], &npos, usage);
    if (rc)
        return rc == 1 ? 0 : 2;
    int sev = 0;
    uint64_t seed = 0;
    if (npos || !in || !out || !name || !sev_s) {
        fputs(usage, stderr);
        return 2;
    }
    if (cli_int("severity", sev_s, 1, 5, &sev) || cli_u64("seed", seed_s, &seed))
        return 2;
    ic_corruption c = IC_CORRUPT_COUNT;
    int family = -1;
    if (ic_corruption_parse(name, &c, &family)) {
        fprintf(stderr, "%s\n", ic_error_message());
        return 2;
    }
    if (cli_corrupt_set(in, out, c, family, sev, seed))
        return 1;
    printf("wrote %s (%s, severity %d)\n", out, name, sev);
    return 0;
}
