/* Training datasets (COCO-panoptic directory, on-the-fly SynthCity) and the
 * batch loader: augmentation, targets, normalisation (see dataset.h). */
#include "train/dataset.h"

#include <stdlib.h>
#include <string.h>

#include "augment/geometric.h"
#include "augment/rng.h"
#include "base/alloc.h"
#include "base/err.h"
#include "base/rng.h"
#include "data/synth.h"
#include "image/coco.h"
#include "image/ids.h"
#include "image/preprocess.h"

enum { DS_DIR, DS_SYNTH };

struct ic_dataset {
    int kind, count;
    /* directory */
    ic_coco *coco;
    int catmap[256];       /* dataset category -> model class, -1 = void */
    /* synth */
    uint64_t seed;
    ic_synth_sample sample;
    int synth_class[256];  /* SynthCity train id -> model class, -1 = void */
    const ic_pdl_config *cfg;
    /* shuffled order of the current epoch */
    int *perm;
    uint64_t perm_epoch, perm_seed;
    int perm_valid;
};

/* Model class of a dataset category. by_name: the class of the same name,
 * else -1 (void); otherwise the id itself when it is a class of the model. */
static int map_category(const ic_pdl_config *cfg, int id, const char *name, int by_name)
{
    if (by_name) {
        for (int c = 0; name && c < cfg->num_classes; c++)
            if (!strcmp(cfg->class_names[c], name))
                return c;
        return -1;
    }
    return id >= 0 && id < cfg->num_classes ? id : -1;
}

/* 1 when `name` is one of the model's class names: then the dataset's
 * categories are matched by name (ids of another label set would mislabel
 * classes), else by id. */
static int is_class_name(const ic_pdl_config *cfg, const char *name)
{
    for (int c = 0; name && c < cfg->num_classes; c++)
        if (!strcmp(cfg->class_names[c], name))
            return 1;
    return 0;
}

static ic_dataset *ds_new(int kind, const ic_pdl_config *cfg)
{
    ic_dataset *d = ic_calloc(1, sizeof *d);
    if (d) {
        d->kind = kind;
        d->cfg = cfg;
    }
    return d;
}

int ic_dataset_open_dir(ic_dataset **ret, const char *dir, const ic_pdl_config *cfg)
{
    *ret = NULL;
    ic_coco *coco = NULL;
    int rc = ic_coco_open(&coco, dir);
    if (rc)
        return rc;
    if (!ic_coco_count(coco)) {
        ic_coco_free(&coco);
        return ic_error_set(IC_EFORMAT, "%s/panoptic.json: no annotations", dir);
    }
    ic_dataset *d = ds_new(DS_DIR, cfg);
    if (!d) {
        ic_coco_free(&coco);
        return ic_error_set(IC_ENOMEM, "dataset: no memory to open %s", dir);
    }
    d->coco = coco;
    d->count = ic_coco_count(coco);
    int n_cats, by_name = 0;
    const ic_coco_category *cats = ic_coco_categories(coco, &n_cats);
    for (int i = 0; i < n_cats; i++)
        by_name |= is_class_name(cfg, cats[i].name);
    for (int k = 0; k < 256; k++)
        d->catmap[k] = by_name ? -1 : map_category(cfg, k, NULL, 0);
    for (int i = 0; i < n_cats; i++)
        if (cats[i].id >= 0 && cats[i].id < 256)
            d->catmap[cats[i].id] = map_category(cfg, cats[i].id, cats[i].name, by_name);
    *ret = d;
    return 0;
}

int ic_dataset_open_synth(ic_dataset **ret, uint64_t seed, int count, int h, int w,
                          const ic_pdl_config *cfg)
{
    *ret = NULL;
    if (count < 1)
        return ic_error_set(IC_EINVAL, "synth dataset: count must be >= 1");
    ic_dataset *d = ds_new(DS_SYNTH, cfg);
    if (!d)
        return ic_error_set(IC_ENOMEM, "synth dataset: no memory");
    int rc = ic_synth_sample_init(&d->sample, h, w);
    if (rc) {
        ic_free(d);
        return rc;
    }
    d->count = count;
    d->seed = seed;
    int by_name = 0;
    for (int c = 0; c < IC_SYNTH_NUM_CLASSES; c++)
        by_name |= is_class_name(cfg, ic_synth_classes()[c].name);
    for (int c = 0; c < 256; c++) {
        const ic_synth_class *k = ic_synth_class_find(c);
        d->synth_class[c] = k ? map_category(cfg, c, k->name, by_name) : -1;
    }
    *ret = d;
    return 0;
}

void ic_dataset_free(ic_dataset **pd)
{
    ic_dataset *d = pd ? *pd : NULL;
    if (!d)
        return;
    ic_coco_free(&d->coco);
    ic_free(d->perm);
    ic_synth_sample_deinit(&d->sample);
    ic_free(d);
    *pd = NULL;
}

int ic_dataset_size(const ic_dataset *d)
{
    return d->count;
}

void ic_train_item_deinit(ic_train_item *it)
{
    ic_image_free(&it->img);
    ic_free(it->ids);
    ic_free(it->segs);
    memset(it, 0, sizeof *it);
}

/* Decodes a file's bytes; a failure names the file. */
static int decode(const unsigned char *buf, size_t len, int channels, const char *sub,
                  const char *name, ic_image *img)
{
    ic_image_decode_opts o = ic_image_decode_opts_default();
    o.channels = channels;
    int rc = ic_image_decode(buf, len, &o, img);
    return rc ? ic_error_prefix(rc, "%s/%s", sub, name) : 0;
}

static int get_dir(ic_dataset *d, int index, ic_train_item *out)
{
    const ic_coco_image *e = ic_coco_get(d->coco, index);
    unsigned char *ib = NULL, *lb = NULL;
    size_t il = 0, ll = 0;
    int rc = ic_coco_read(d->coco, index, (size_t)1 << 30, &ib, &il, &lb, &ll);
    if (rc)
        return rc;
    ic_image lbl = {0};
    rc = decode(ib, il, 3, "images", e->image, &out->img);
    if (!rc)
        rc = decode(lb, ll, 3, "panoptic", e->label, &lbl);
    ic_free(ib);
    ic_free(lb);
    if (!rc && (lbl.w != out->img.w || lbl.h != out->img.h))
        rc = ic_error_set(IC_ESHAPE, "panoptic/%s is %dx%d, its image %dx%d", e->label, lbl.w,
                          lbl.h, out->img.w, out->img.h);
    if (!rc && !(out->ids = ic_malloc((size_t)lbl.w * lbl.h * sizeof(int32_t))))
        rc = ic_error_set(IC_ENOMEM, "dataset: no memory for the ids of %s", e->label);
    if (!rc)
        rc = ic_image_ids_from_rgb(&lbl, out->ids);
    if (!rc && !(out->segs = ic_malloc(((size_t)e->n_segments + 1) * sizeof *out->segs)))
        rc = ic_error_set(IC_ENOMEM, "dataset: no memory for the segments of %s", e->label);
    for (int i = 0; !rc && i < e->n_segments; i++) {
        const ic_coco_segment *s = &e->segments[i];
        int cls = s->category_id < 256 ? d->catmap[s->category_id] : -1;
        if (cls < 0)
            continue; /* a class the model lacks: its pixels stay void */
        out->segs[out->nseg++] = (ic_pano_segment){.id = s->id, .category = cls,
                                                   .iscrowd = s->iscrowd,
                                                   .isthing = d->cfg->is_thing[cls]};
    }
    ic_image_free(&lbl);
    return rc;
}

static int get_synth(ic_dataset *d, int index, ic_train_item *out)
{
    ic_synth_sample *s = &d->sample;
    int rc = ic_synth_render(s, d->seed, (uint64_t)index, IC_SYNTH_SOURCE);
    if (rc)
        return rc;
    size_t hw = (size_t)s->w * s->h;
    if ((rc = ic_image_alloc(&out->img, s->w, s->h, 3, 8)))
        return rc;
    out->ids = ic_malloc(hw * sizeof(int32_t));
    out->segs = ic_malloc(((size_t)s->n_segments + 1) * sizeof *out->segs);
    if (!out->ids || !out->segs)
        return ic_error_set(IC_ENOMEM, "synth dataset: no memory for sample %d", index);
    memcpy(out->img.data, s->rgb, hw * 3);
    memcpy(out->ids, s->ids, hw * sizeof(int32_t));
    for (int i = 0; i < s->n_segments; i++) {
        int c = s->segments[i].category_id;
        int cls = c >= 0 && c < 256 ? d->synth_class[c] : -1;
        if (cls < 0)
            continue;
        out->segs[out->nseg++] = (ic_pano_segment){.id = s->segments[i].id, .category = cls,
                                                   .iscrowd = 0, .isthing = d->cfg->is_thing[cls]};
    }
    return 0;
}

int ic_dataset_get(ic_dataset *d, int index, ic_train_item *out)
{
    memset(out, 0, sizeof *out);
    if (index < 0 || index >= d->count)
        return ic_error_set(IC_EINVAL, "dataset index %d outside [0, %d)", index, d->count);
    int rc = d->kind == DS_DIR ? get_dir(d, index, out) : get_synth(d, index, out);
    if (rc)
        ic_train_item_deinit(out);
    return rc;
}

int ic_dataset_sample_index(ic_dataset *d, uint64_t seed, uint64_t s)
{
    uint64_t n = (uint64_t)d->count, epoch = s / n;
    if (!d->perm && !(d->perm = ic_malloc((size_t)n * sizeof(int))))
        return (int)(s % n); /* out of memory: fall back to sequential order */
    if (!d->perm_valid || d->perm_epoch != epoch || d->perm_seed != seed) {
        ic_rng r;
        ic_rng_seed(&r, seed * 0x9E3779B97F4A7C15ull + epoch + 1);
        for (uint64_t i = 0; i < n; i++)
            d->perm[i] = (int)i;
        for (uint64_t i = n - 1; i > 0; i--) {
            int j = ic_rng_int(&r, 0, (int)i);
            int t = d->perm[i];
            d->perm[i] = d->perm[j];
            d->perm[j] = t;
        }
        d->perm_epoch = epoch;
        d->perm_seed = seed;
        d->perm_valid = 1;
    }
    return d->perm[s % n];
}

ic_loader_opts ic_loader_opts_default(const ic_pdl_config *cfg, int crop_h, int crop_w, int strong,
                                      int sigma)
{
    ic_loader_opts o;
    memset(&o, 0, sizeof o);
    o.crop_h = crop_h;
    o.crop_w = crop_w;
    o.strong = strong;
    o.geom = ic_aug_geom_params_default();
    o.geom.crop_h = crop_h;
    o.geom.crop_w = crop_w;
    o.strong_p = ic_aug_strong_params_default();
    o.targets = ic_target_params_default();
    if (sigma > 0)
        o.targets.sigma = sigma;
    double area = (double)o.targets.small_instance_area * crop_h * crop_w / (512.0 * 1024.0);
    o.targets.small_instance_area = area < 1 ? 1 : (long)(area + 0.5);
    for (int c = 0; c < 3; c++) {
        o.mean[c] = cfg->pixel_mean[c];
        o.std[c] = cfg->pixel_std[c];
    }
    return o;
}

int ic_batch_init(ic_batch *b, int n, int h, int w)
{
    memset(b, 0, sizeof *b);
    if (n < 1 || h < 1 || w < 1)
        return ic_error_set(IC_EINVAL, "batch %d x %d x %d", n, h, w);
    size_t hw = (size_t)h * w, px = (size_t)n * hw;
    /* image 3, sem 1, sem_w 1, center 1, center_w 1, offset 2, offset_w 1 */
    float *f = ic_malloc(10 * px * sizeof(float));
    if (!f)
        return ic_error_set(IC_ENOMEM, "batch: no memory for %d x %d x %d", n, h, w);
    b->mem = f;
    b->n = n;
    b->h = h;
    b->w = w;
    b->image = ic_tensor_wrap(f, n, 3, h, w);
    b->sem = (int32_t *)(f + 3 * px);
    b->sem_w = f + 4 * px;
    b->center = ic_tensor_wrap(f + 5 * px, n, 1, h, w);
    b->center_w = ic_tensor_wrap(f + 6 * px, n, 1, h, w);
    b->offset = ic_tensor_wrap(f + 7 * px, n, 2, h, w);
    b->offset_w = ic_tensor_wrap(f + 9 * px, n, 1, h, w);
    return 0;
}

void ic_batch_deinit(ic_batch *b)
{
    if (b) {
        ic_free(b->mem);
        memset(b, 0, sizeof *b);
    }
}

/* One batch slot: load, augment, label, normalise. */
static int fill_one(ic_batch *b, int k, ic_dataset *d, const ic_loader_opts *o, uint64_t seed,
                    uint64_t s)
{
    ic_train_item it;
    int rc = ic_dataset_get(d, ic_dataset_sample_index(d, seed, s), &it);
    if (rc)
        return rc;
    ic_aug_rng r;
    ic_aug_rng_seed(&r, seed, s);
    ic_aug_geom_params g = o->geom;
    g.crop_h = o->crop_h;
    g.crop_w = o->crop_w;
    if (o->strong) {
        ic_aug_strong_params sp = o->strong_p;
        sp.geometric = 1;
        sp.geom = g;
        rc = ic_aug_strong(&r, &it.img, &it.ids, &sp);
    } else {
        rc = ic_aug_geometric(&r, &it.img, &it.ids, &g);
    }
    if (!rc && (it.img.w != b->w || it.img.h != b->h))
        rc = ic_error_set(IC_ESHAPE, "augmented sample is %dx%d, batch %dx%d", it.img.w, it.img.h,
                          b->w, b->h);
    size_t hw = (size_t)b->h * b->w, off = (size_t)k * hw;
    if (!rc) {
        ic_pano_targets t = {.semantic = b->sem + off,
                             .semantic_weights = b->sem_w + off,
                             .center = b->center.data + off,
                             .center_weights = b->center_w.data + off,
                             .offset = b->offset.data + 2 * off,
                             .offset_weights = b->offset_w.data + off};
        rc = ic_targets_generate(&t, it.ids, b->h, b->w, it.segs, it.nseg, &o->targets);
    }
    if (!rc)
        rc = ic_image_to_tensor(&it.img, o->mean, o->std, &b->image, k);
    ic_train_item_deinit(&it);
    return rc;
}

int ic_loader_fill(ic_batch *b, ic_dataset *d, const ic_loader_opts *o, uint64_t seed,
                   uint64_t first)
{
    if (o->crop_h != b->h || o->crop_w != b->w)
        return ic_error_set(IC_EINVAL, "loader crop %dx%d but batch %dx%d", o->crop_w, o->crop_h,
                            b->w, b->h);
    for (int k = 0; k < b->n; k++) {
        int rc = fill_one(b, k, d, o, seed, first + (uint64_t)k);
        if (rc)
            return rc;
    }
    return 0;
}
