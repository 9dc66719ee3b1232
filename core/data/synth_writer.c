/* SynthCity dataset writer: renders scenes on worker threads, writes the
 * PNGs as each finishes and the COCO-panoptic JSON at the end (see
 * synth_writer.h). Each worker owns one ic_synth_sample, so the workers
 * share nothing but a counter; the JSON lists images in index order
 * whatever order they finished in. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/alloc.h"
#include "base/err.h"
#include "data/synth_writer.h"
#include "image/ids.h"
#include "image/png.h"

#define PATH_CAP 4096

int ic_synth_mkdirs(const char *path)
{
    char buf[PATH_CAP];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return ic_error_set(IC_EIO, "synth: bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return ic_error_set(IC_EIO, "synth: cannot create directory '%s': %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ic_error_set(IC_EIO, "synth: '%s' is not a directory", path);
    return 0;
}

static int write_file(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return ic_error_set(IC_EIO, "synth: cannot write '%s': %s", path, strerror(errno));
    size_t put = fwrite(buf, 1, len, f);
    int bad = fclose(f) != 0 || put != len;
    return bad ? ic_error_set(IC_EIO, "synth: short write to '%s'", path) : 0;
}

static int write_png(const ic_image *img, const char *path)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = ic_image_encode_png(img, NULL, &buf, &len);
    if (rc)
        return rc;
    rc = write_file(path, buf, len);
    ic_free(buf);
    return rc;
}

int ic_synth_write_rgb_png(const ic_synth_sample *s, const char *path)
{
    ic_image img = {s->w, s->h, 3, 8, s->rgb};
    return write_png(&img, path);
}

int ic_synth_write_ids_png(const ic_synth_sample *s, const char *path)
{
    size_t n = (size_t)s->w * (size_t)s->h;
    uint8_t *rgb = ic_malloc(3 * n);
    if (!rgb)
        return ic_error_set(IC_ENOMEM, "synth: out of memory encoding ids");
    int rc = ic_image_ids_to_rgb(s->ids, s->w, s->h, rgb);
    if (!rc) {
        ic_image img = {s->w, s->h, 3, 8, rgb};
        rc = write_png(&img, path);
    }
    ic_free(rgb);
    return rc;
}

int ic_synth_write_semantic_png(const ic_synth_sample *s, const char *path)
{
    size_t n = (size_t)s->w * (size_t)s->h;
    uint8_t *rgb = ic_calloc(3 * n, 1);
    if (!rgb)
        return ic_error_set(IC_ENOMEM, "synth: out of memory encoding labels");
    for (size_t i = 0; i < n; i++) {
        const ic_synth_class *c = ic_synth_class_find(s->semantic[i]);
        if (c)
            memcpy(rgb + 3 * i, c->color, 3);
    }
    ic_image img = {s->w, s->h, 3, 8, rgb};
    int rc = write_png(&img, path);
    ic_free(rgb);
    return rc;
}

int ic_synth_write_depth_png(const ic_synth_sample *s, const char *path)
{
    size_t n = (size_t)s->w * (size_t)s->h;
    uint16_t *cm = ic_malloc(n * sizeof *cm);
    if (!cm)
        return ic_error_set(IC_ENOMEM, "synth: out of memory encoding depth");
    for (size_t i = 0; i < n; i++) {
        float d = s->depth[i] * 100.0f + 0.5f;
        cm[i] = d >= 65535.0f ? 65535 : (uint16_t)d;
    }
    ic_image img = {s->w, s->h, 1, 16, cm};
    int rc = write_png(&img, path);
    ic_free(cm);
    return rc;
}

/* ---------------------------------------------------------------- dataset */

typedef struct image_result {
    ic_synth_segment *seg;
    int n_seg;
} image_result;

typedef struct write_job {
    const ic_synth_write_opts *o;
    int h, w;
    image_result *res;
    ic_synth_progress_fn progress;
    void *user;
    pthread_mutex_t mu;
    int next, done;
    int rc;
    char msg[512];
} write_job;

static void job_fail(write_job *j, int rc)
{
    pthread_mutex_lock(&j->mu);
    if (!j->rc) {
        j->rc = rc;
        snprintf(j->msg, sizeof j->msg, "%s", ic_error_message());
    }
    pthread_mutex_unlock(&j->mu);
}

static int render_one(write_job *j, ic_synth_sample *s, int i)
{
    const ic_synth_write_opts *o = j->o;
    uint64_t index = o->start + (uint64_t)i;
    int rc = ic_synth_render(s, o->seed, index, o->domain);
    if (rc)
        return rc;
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/images/%06llu.png", o->out_dir, (unsigned long long)index);
    if ((rc = ic_synth_write_rgb_png(s, path)))
        return rc;
    snprintf(path, sizeof path, "%s/panoptic/%06llu.png", o->out_dir, (unsigned long long)index);
    if ((rc = ic_synth_write_ids_png(s, path)))
        return rc;
    snprintf(path, sizeof path, "%s/depth/%06llu.png", o->out_dir, (unsigned long long)index);
    if ((rc = ic_synth_write_depth_png(s, path)))
        return rc;
    image_result *r = &j->res[i];
    r->seg = ic_malloc((size_t)(s->n_segments > 0 ? s->n_segments : 1) * sizeof *r->seg);
    if (!r->seg)
        return ic_error_set(IC_ENOMEM, "synth: out of memory for segments");
    memcpy(r->seg, s->segments, (size_t)s->n_segments * sizeof *r->seg);
    r->n_seg = s->n_segments;
    return 0;
}

static void *worker(void *arg)
{
    write_job *j = arg;
    ic_synth_sample s;
    int rc = ic_synth_sample_init(&s, j->h, j->w);
    if (rc) {
        job_fail(j, rc);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&j->mu);
        int i = j->rc ? j->o->count : j->next++;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->o->count)
            break;
        rc = render_one(j, &s, i);
        if (rc) {
            job_fail(j, rc);
            break;
        }
        pthread_mutex_lock(&j->mu);
        j->done++;
        if (j->progress)
            j->progress(j->done, j->o->count, j->user);
        pthread_mutex_unlock(&j->mu);
    }
    ic_synth_sample_deinit(&s);
    return NULL;
}

static json_t *categories_json(void)
{
    json_t *cats = json_array();
    const ic_synth_class *c = ic_synth_classes();
    for (int i = 0; cats && i < IC_SYNTH_NUM_CLASSES; i++)
        json_array_append_new(cats, json_pack("{s:i, s:s, s:i, s:[i,i,i]}", "id", c[i].train_id, "name",
                                              c[i].name, "isthing", c[i].isthing, "color",
                                              c[i].color[0], c[i].color[1], c[i].color[2]));
    return cats;
}

static int write_json(const write_job *j)
{
    const ic_synth_write_opts *o = j->o;
    json_t *root = json_object(), *images = json_array(), *anns = json_array();
    int rc = 0;
    if (!root || !images || !anns) {
        json_decref(root);
        json_decref(images);
        json_decref(anns);
        return ic_error_set(IC_ENOMEM, "synth: out of memory building JSON");
    }
    json_object_set_new(root, "info",
                        json_pack("{s:s, s:s, s:I, s:I, s:i, s:f}", "description",
                                  "SynthCity procedural street scenes (InstCal Server)", "domain",
                                  ic_synth_domain_name(o->domain), "seed", (json_int_t)o->seed,
                                  "start", (json_int_t)o->start, "count", o->count, "fog_beta",
                                  (double)ic_synth_fog_beta(o->domain)));
    for (int i = 0; i < o->count; i++) {
        uint64_t index = o->start + (uint64_t)i;
        char name[32];
        snprintf(name, sizeof name, "%06llu.png", (unsigned long long)index);
        json_array_append_new(images, json_pack("{s:I, s:s, s:i, s:i}", "id", (json_int_t)index,
                                                "file_name", name, "width", j->w, "height", j->h));
        json_t *infos = json_array();
        for (int k = 0; infos && k < j->res[i].n_seg; k++) {
            const ic_synth_segment *s = &j->res[i].seg[k];
            json_array_append_new(infos, json_pack("{s:i, s:i, s:i, s:I, s:[i,i,i,i]}", "id", s->id,
                                                   "category_id", s->category_id, "iscrowd", 0, "area",
                                                   (json_int_t)s->area, "bbox", s->bbox[0], s->bbox[1],
                                                   s->bbox[2], s->bbox[3]));
        }
        json_array_append_new(anns, json_pack("{s:I, s:s, s:o}", "image_id", (json_int_t)index,
                                              "file_name", name, "segments_info", infos));
    }
    json_object_set_new(root, "images", images);
    json_object_set_new(root, "annotations", anns);
    json_object_set_new(root, "categories", categories_json());
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/panoptic.json", o->out_dir);
    if (json_dump_file(root, path, JSON_COMPACT) != 0)
        rc = ic_error_set(IC_EIO, "synth: cannot write '%s'", path);
    json_decref(root);
    return rc;
}

int ic_synth_write_dataset(const ic_synth_write_opts *o, ic_synth_progress_fn progress, void *user)
{
    if (!o || !o->out_dir || !*o->out_dir)
        return ic_error_set(IC_EINVAL, "synth: no output directory");
    if (o->count < 1)
        return ic_error_set(IC_EINVAL, "synth: count must be at least 1 (got %d)", o->count);
    if ((int)o->domain < 0 || o->domain >= IC_SYNTH_NUM_DOMAINS)
        return ic_error_set(IC_EINVAL, "synth: bad domain %d", (int)o->domain);
    int h = o->h ? o->h : IC_SYNTH_DEFAULT_H, w = o->w ? o->w : IC_SYNTH_DEFAULT_W;
    if (h < IC_SYNTH_MIN_SIDE || w < IC_SYNTH_MIN_SIDE || h > IC_SYNTH_MAX_SIDE || w > IC_SYNTH_MAX_SIDE)
        return ic_error_set(IC_EINVAL, "synth: image size %dx%d (HxW) outside %dx%d..%dx%d", h, w,
                            IC_SYNTH_MIN_SIDE, IC_SYNTH_MIN_SIDE, IC_SYNTH_MAX_SIDE, IC_SYNTH_MAX_SIDE);
    if (strlen(o->out_dir) > PATH_CAP - 64)
        return ic_error_set(IC_EINVAL, "synth: output path too long");
    static const char *const sub[] = {"images", "panoptic", "depth"};
    char path[PATH_CAP];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", o->out_dir, sub[i]);
        int rc = ic_synth_mkdirs(path);
        if (rc)
            return rc;
    }
    write_job j;
    memset(&j, 0, sizeof j);
    j.o = o;
    j.h = h;
    j.w = w;
    j.progress = progress;
    j.user = user;
    j.res = ic_calloc((size_t)o->count, sizeof *j.res);
    if (!j.res)
        return ic_error_set(IC_ENOMEM, "synth: out of memory for %d results", o->count);
    pthread_mutex_init(&j.mu, NULL);
    int n_threads = o->threads > 1 ? (o->threads > 64 ? 64 : o->threads) : 1;
    pthread_t tid[64];
    int started = 0;
    for (int t = 1; t < n_threads; t++)
        if (pthread_create(&tid[started], NULL, worker, &j) == 0)
            started++;
    worker(&j);
    for (int t = 0; t < started; t++)
        pthread_join(tid[t], NULL);
    pthread_mutex_destroy(&j.mu);
    int rc = j.rc ? ic_error_set(j.rc, "%s", j.msg) : write_json(&j);
    for (int i = 0; i < o->count; i++)
        ic_free(j.res[i].seg);
    ic_free(j.res);
    return rc;
}
