/* COCO-panoptic folder reader (see coco.h). Everything parsed lives in one
 * arena owned by the reader, so ic_coco_free releases it at once. */
#include "image/coco.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/arena.h"
#include "base/err.h"
#include "image/ids.h"

struct ic_coco {
    char *dir, *json_path;
    ic_coco_image *images;
    int n_images;
    ic_coco_category *cats;
    int n_cats;
    ic_arena arena; /* strings, segments */
};

static char *arena_str(ic_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *r = ic_arena_alloc(a, n);
    if (r)
        memcpy(r, s, n);
    return r;
}

/* The file name of the image entry whose id is `id`, with its size. */
static const char *find_image(json_t *images, json_t *id, int *w, int *h)
{
    size_t i;
    json_t *im;
    if (!json_is_integer(id))
        return NULL;
    json_array_foreach(images, i, im)
    {
        json_t *iid = json_object_get(im, "id");
        if (json_is_integer(iid) && json_integer_value(iid) == json_integer_value(id)) {
            json_int_t iw = json_integer_value(json_object_get(im, "width"));
            json_int_t ih = json_integer_value(json_object_get(im, "height"));
            *w = iw > 0 && iw <= (1 << 30) ? (int)iw : 0;
            *h = ih > 0 && ih <= (1 << 30) ? (int)ih : 0;
            return json_string_value(json_object_get(im, "file_name"));
        }
    }
    return NULL;
}

static int parse_segments(ic_coco *c, ic_coco_image *e, json_t *segs, size_t k)
{
    size_t n = json_array_size(segs), i;
    ic_coco_segment *out = ic_arena_calloc(&c->arena, n ? n : 1, sizeof *out);
    if (!out)
        return ic_error_prefix(IC_ENOMEM, "%s: segments of annotation %zu", c->json_path, k);
    json_t *s;
    json_array_foreach(segs, i, s)
    {
        json_t *id = json_object_get(s, "id"), *cat = json_object_get(s, "category_id");
        json_t *crowd = json_object_get(s, "iscrowd");
        if (!json_is_integer(id) || !json_is_integer(cat))
            return ic_error_set(IC_EFORMAT,
                                "%s: annotation %zu (%s), segment %zu: needs integer id and "
                                "category_id", c->json_path, k, e->label, i);
        json_int_t v = json_integer_value(id), cv = json_integer_value(cat);
        if (v < 1 || v > IC_IMAGE_ID_MAX)
            return ic_error_set(IC_EFORMAT,
                                "%s: annotation %zu (%s), segment %zu: id %lld outside 1..%d",
                                c->json_path, k, e->label, i, (long long)v, IC_IMAGE_ID_MAX);
        if (cv < 0 || cv > 0x7fffffff)
            return ic_error_set(IC_EFORMAT,
                                "%s: annotation %zu (%s), segment %zu: category_id %lld is "
                                "negative or too large", c->json_path, k, e->label, i,
                                (long long)cv);
        out[i].id = (int32_t)v;
        out[i].category_id = (int)cv;
        out[i].iscrowd = json_is_true(crowd) || json_integer_value(crowd) != 0;
    }
    e->segments = out;
    e->n_segments = (int)n;
    char *text = json_dumps(segs, JSON_COMPACT);
    e->segments_json = text ? arena_str(&c->arena, text) : NULL;
    free(text);
    if (!e->segments_json)
        return ic_error_set(IC_ENOMEM, "%s: no memory for the segments of annotation %zu",
                            c->json_path, k);
    return 0;
}

static int parse_annotation(ic_coco *c, ic_coco_image *e, json_t *ann, json_t *images, size_t k)
{
    json_t *segs = json_object_get(ann, "segments_info");
    const char *label = json_string_value(json_object_get(ann, "file_name"));
    const char *img = find_image(images, json_object_get(ann, "image_id"), &e->width, &e->height);
    if (!json_is_array(segs) || !label || !img)
        return ic_error_set(IC_EFORMAT,
                            "%s: annotation %zu without image_id/file_name/segments_info or its "
                            "image entry", c->json_path, k);
    e->image = arena_str(&c->arena, img);
    e->label = arena_str(&c->arena, label);
    if (!e->image || !e->label)
        return ic_error_prefix(IC_ENOMEM, "%s: annotation %zu", c->json_path, k);
    return parse_segments(c, e, segs, k);
}

static int parse_categories(ic_coco *c, json_t *cats)
{
    size_t n = json_array_size(cats), i;
    c->cats = ic_arena_calloc(&c->arena, n ? n : 1, sizeof *c->cats);
    if (!c->cats)
        return ic_error_prefix(IC_ENOMEM, "%s: categories", c->json_path);
    json_t *cat;
    json_array_foreach(cats, i, cat)
    {
        json_int_t id = json_integer_value(json_object_get(cat, "id"));
        const char *name = json_string_value(json_object_get(cat, "name"));
        c->cats[i].id = id >= 0 && id <= 0x7fffffff ? (int)id : -1;
        if (name && !(c->cats[i].name = arena_str(&c->arena, name)))
            return ic_error_prefix(IC_ENOMEM, "%s: categories", c->json_path);
    }
    c->n_cats = (int)n;
    return 0;
}

static int parse(ic_coco *c, json_t *root)
{
    json_t *anns = json_object_get(root, "annotations"), *images = json_object_get(root, "images");
    if (!json_is_array(anns) || !json_is_array(images))
        return ic_error_set(IC_EFORMAT, "%s: needs \"images\" and \"annotations\" arrays",
                            c->json_path);
    size_t n = json_array_size(anns);
    if (n > (1 << 30))
        return ic_error_set(IC_ELIMIT, "%s: %zu annotations", c->json_path, n);
    c->images = ic_arena_calloc(&c->arena, n ? n : 1, sizeof *c->images);
    if (!c->images)
        return ic_error_prefix(IC_ENOMEM, "%s", c->json_path);
    for (size_t k = 0; k < n; k++) {
        int rc = parse_annotation(c, &c->images[k], json_array_get(anns, k), images, k);
        if (rc)
            return rc;
    }
    c->n_images = (int)n;
    return parse_categories(c, json_object_get(root, "categories"));
}

int ic_coco_open(ic_coco **ret, const char *dir)
{
    *ret = NULL;
    if (!dir)
        return ic_error_set(IC_EINVAL, "coco: NULL directory");
    ic_coco *c = ic_calloc(1, sizeof *c);
    if (!c)
        return ic_error_set(IC_ENOMEM, "coco: no memory to open %s", dir);
    ic_arena_init(&c->arena, 0, 0);
    size_t len = strlen(dir) + sizeof "/panoptic.json";
    c->dir = arena_str(&c->arena, dir);
    c->json_path = ic_arena_alloc(&c->arena, len);
    if (!c->dir || !c->json_path) {
        ic_coco_free(&c);
        return ic_error_prefix(IC_ENOMEM, "coco: %s", dir);
    }
    snprintf(c->json_path, len, "%s/panoptic.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(c->json_path, 0, &jerr);
    int rc = root ? parse(c, root)
                  : ic_error_set(IC_EIO, "%s: %s (line %d)", c->json_path, jerr.text, jerr.line);
    json_decref(root);
    if (rc)
        ic_coco_free(&c);
    *ret = c;
    return rc;
}

void ic_coco_free(ic_coco **pc)
{
    ic_coco *c = pc ? *pc : NULL;
    if (!c)
        return;
    ic_arena_deinit(&c->arena);
    ic_free(c);
    *pc = NULL;
}

int ic_coco_count(const ic_coco *c)
{
    return c->n_images;
}

const ic_coco_image *ic_coco_get(const ic_coco *c, int i)
{
    return i >= 0 && i < c->n_images ? &c->images[i] : NULL;
}

const ic_coco_category *ic_coco_categories(const ic_coco *c, int *n)
{
    *n = c->n_cats;
    return c->cats;
}

/* DIR/SUB/NAME into an ic_malloc'd buffer of at most max_bytes. */
static int read_file(const ic_coco *c, const char *sub, const char *name, size_t max_bytes,
                     unsigned char **ret, size_t *ret_len)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s/%s", c->dir, sub, name) >= (int)sizeof path)
        return ic_error_set(IC_ELIMIT, "coco: path of %s/%s is too long", sub, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return ic_error_set(IC_EIO, "cannot open %s: %s", path, strerror(errno));
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                if (fgetc(f) == EOF)
                    break; /* exactly max_bytes */
                rc = ic_error_set(IC_ELIMIT, "%s is larger than %zu bytes", path, max_bytes);
                break;
            }
            cap = cap ? 2 * cap : 1 << 16;
            cap = cap > max_bytes ? max_bytes : cap;
            unsigned char *nb = ic_realloc(buf, cap + 1);
            if (!nb) {
                rc = ic_error_set(IC_ENOMEM, "no memory to read %s", path);
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    if (!rc && ferror(f))
        rc = ic_error_set(IC_EIO, "cannot read %s", path);
    fclose(f);
    if (rc) {
        ic_free(buf);
        return rc;
    }
    *ret = buf;
    *ret_len = n;
    return 0;
}

int ic_coco_read(const ic_coco *c, int i, size_t max_bytes, unsigned char **img, size_t *img_len,
                 unsigned char **lbl, size_t *lbl_len)
{
    const ic_coco_image *e = ic_coco_get(c, i);
    if (!e)
        return ic_error_set(IC_EINVAL, "coco: image %d outside 0..%d", i, c->n_images - 1);
    int rc = read_file(c, "images", e->image, max_bytes, img, img_len);
    if (rc || !lbl)
        return rc;
    rc = read_file(c, "panoptic", e->label, max_bytes, lbl, lbl_len);
    if (rc) {
        ic_free(*img);
        *img = NULL;
    }
    return rc;
}
