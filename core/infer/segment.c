/* The full inference path of one image (see segment.h). */
#include "infer/segment.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/ids.h"
#include "image/png.h"
#include "image/preprocess.h"
#include "ops/resize.h"
#include "ops/softmax.h"
#include "post/rle.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *const output_names[IC_OUT_COUNT] = {
#define IC_OUT_NAME(id, name, what) name,
    IC_OUTPUTS(IC_OUT_NAME)
#undef IC_OUT_NAME
};

/* ", panoptic, ..., rle": each name after a separator. */
#define IC_OUT_LIST(id, name, what) ", " name
static const char output_list[] = IC_OUTPUTS(IC_OUT_LIST);
#undef IC_OUT_LIST

const char *ic_segment_output_name(int i)
{
    return i >= 0 && i < IC_OUT_COUNT ? output_names[i] : NULL;
}

/* The mask of the n-character name at p, or -1. */
static long output_bits(const char *p, size_t n)
{
    for (int i = 0; i < IC_OUT_COUNT; i++)
        if (strlen(output_names[i]) == n && !strncmp(p, output_names[i], n))
            return 1L << i;
    if (n == 3 && !strncmp(p, "all", 3))
        return IC_OUT_ALL;
    if (n == 4 && !strncmp(p, "none", 4))
        return 0;
    return -1;
}

int ic_segment_parse_outputs(const char *list, unsigned *ret_mask)
{
    unsigned mask = 0;
    const char *p = list ? list : "";
    while (*p) {
        size_t n = strcspn(p, ", ");
        if (n) {
            long bits = output_bits(p, n);
            if (bits < 0)
                return ic_error_set(IC_EINVAL, "unknown output '%.*s' (use %s, all or none)",
                                    (int)n, p, output_list + 2);
            mask |= (unsigned)bits;
        }
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    *ret_mask = mask;
    return 0;
}

/* ---------------------------------------------------------------- ground truth */

static int cmp_pq_seg(const void *a, const void *b)
{
    const ic_pq_segment *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static const ic_pq_segment *find_seg(const ic_pq_segment *s, int n, int32_t id)
{
    ic_pq_segment key = {.id = id};
    return bsearch(&key, s, (size_t)n, sizeof *s, cmp_pq_seg);
}

static int parse_segments(ic_segment_gt *gt, ic_arena *arena, const ic_pdl_config *cfg,
                          const char *text, size_t len)
{
    json_error_t jerr;
    /* The whole text must be one JSON value: a NUL and garbage after it
     * are an error, not the end (json_loads stopped at the NUL). */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return ic_error_set(IC_EFORMAT, "label segments: invalid JSON at byte %d: %s",
                            jerr.position, jerr.text);
    json_t *arr = json_is_object(root) ? json_object_get(root, "segments_info") : root;
    int rc = 0;
    if (!json_is_array(arr)) {
        rc = ic_error_set(IC_EFORMAT, "label segments: expected a JSON array of segments_info");
        goto done;
    }
    size_t n = json_array_size(arr);
    /* PQ's limit, checked here so that the request is refused before
     * inference (and as a bad label, not 413). */
    if (n > IC_PQ_MAX_SEGMENTS) {
        rc = ic_error_set(IC_EFORMAT, "label segments: %zu segments, at most %d", n,
                          IC_PQ_MAX_SEGMENTS);
        goto done;
    }
    gt->segments = ic_arena_calloc(arena, n ? n : 1, sizeof *gt->segments);
    if (!gt->segments) {
        rc = ic_error_prefix(IC_ENOMEM, "label segments");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(arr, i);
        json_t *id = json_object_get(s, "id"), *cat = json_object_get(s, "category_id"),
               *crowd = json_object_get(s, "iscrowd");
        if (!json_is_integer(id) || !json_is_integer(cat) || json_integer_value(id) <= 0 ||
            json_integer_value(id) > 0xFFFFFF || json_integer_value(cat) < 0 ||
            json_integer_value(cat) >= cfg->num_classes) {
            rc = ic_error_set(IC_EFORMAT,
                              "label segments[%zu]: needs id in 1..16777215 and category_id in 0..%d",
                              i, cfg->num_classes - 1);
            goto done;
        }
        gt->segments[i].id = (int32_t)json_integer_value(id);
        gt->segments[i].category_id = (int)json_integer_value(cat);
        gt->segments[i].iscrowd = json_is_integer(crowd) && json_integer_value(crowd) != 0;
    }
    gt->n_segments = (int)n;
    qsort(gt->segments, n, sizeof *gt->segments, cmp_pq_seg);
    for (size_t i = 1; i < n; i++)
        if (gt->segments[i].id == gt->segments[i - 1].id) {
            rc = ic_error_set(IC_EFORMAT, "label segments: id %d listed twice", gt->segments[i].id);
            goto done;
        }
done:
    json_decref(root);
    return rc;
}

int ic_segment_gt_load(ic_segment_gt *gt, ic_arena *arena, const ic_pdl_config *cfg,
                       const void *png, size_t png_len, const char *segments_json,
                       size_t segments_len, const ic_image_limits *limits)
{
    memset(gt, 0, sizeof *gt);
    ic_image img = {0};
    ic_image_decode_opts o = {.keep16 = 1, .keep_values = 1};
    if (limits)
        o.limits = *limits;
    int rc = ic_image_decode(png, png_len, &o, &img);
    if (rc)
        return ic_error_prefix(rc, "label");
    size_t n = (size_t)img.w * (size_t)img.h;
    gt->w = img.w;
    gt->h = img.h;
    gt->sem = ic_arena_alloc(arena, n * sizeof(int32_t));
    if (!gt->sem) {
        rc = ic_error_prefix(IC_ENOMEM, "label: class map");
        goto done;
    }
    if (segments_json) {
        if (img.c < 3 || img.depth != 8) {
            rc = ic_error_set(IC_EFORMAT, "label: a panoptic label must be an 8-bit RGB PNG");
            goto done;
        }
        if ((rc = parse_segments(gt, arena, cfg, segments_json, segments_len)) != 0)
            goto done;
        gt->ids = ic_arena_alloc(arena, n * sizeof(int32_t));
        if (!gt->ids) {
            rc = ic_error_prefix(IC_ENOMEM, "label: id map");
            goto done;
        }
        if ((rc = ic_image_ids_from_rgb(&img, gt->ids)) != 0)
            goto done;
        for (size_t i = 0; i < n; i++) {
            if (gt->ids[i] == 0) {
                gt->sem[i] = cfg->ignore_value;
                continue;
            }
            const ic_pq_segment *s = find_seg(gt->segments, gt->n_segments, gt->ids[i]);
            if (!s) {
                rc = ic_error_set(IC_EFORMAT, "label: segment id %d is in the PNG but not in the "
                                              "segments list", gt->ids[i]);
                goto done;
            }
            gt->sem[i] = s->category_id;
        }
    } else {
        if (img.c != 1) {
            rc = ic_error_set(IC_EFORMAT, "label: an RGB panoptic label needs its segments_info; "
                                          "a semantic label must be a gray or palette PNG of class ids");
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            int v = img.depth == 16 ? ((const uint16_t *)img.data)[i] : ((const uint8_t *)img.data)[i];
            if (v >= cfg->num_classes && v != cfg->ignore_value) {
                rc = ic_error_set(IC_EFORMAT, "label: class id %d at pixel %zu is not a class of the "
                                              "model (0..%d, void %d)",
                                  v, i, cfg->num_classes - 1, cfg->ignore_value);
                goto done;
            }
            gt->sem[i] = v;
        }
    }
done:
    ic_image_free(&img);
    return rc;
}

/* ---------------------------------------------------------------- resizing outputs */

/* Crops t (1, C, ph, pw) to (nh, nw) and resizes it to (h, w) into a new
 * arena tensor; channel c is multiplied by mul[c] (offsets follow the
 * resize, which detectron2 does not do, so that grouping stays right). */
static int crop_resize(ic_arena *arena, const ic_tensor *t, int nh, int nw, int h, int w,
                       const float *mul, ic_tensor *out)
{
    ic_tensor crop = *t;
    if (nh != t->h || nw != t->w) {
        if (ic_tensor_alloc(&crop, arena, 1, t->c, nh, nw))
            return ic_error_prefix(IC_ENOMEM, "segment: crop");
        for (int c = 0; c < t->c; c++)
            for (int r = 0; r < nh; r++)
                memcpy(ic_tensor_at(&crop, 0, c) + (size_t)r * nw,
                       ic_tensor_at(t, 0, c) + (size_t)r * t->w, (size_t)nw * sizeof(float));
    }
    if (nh == h && nw == w && !mul) {
        *out = crop;
        return 0;
    }
    int rc = ic_tensor_alloc(out, arena, 1, t->c, h, w);
    if (rc)
        return rc;
    if (nh == h && nw == w)
        memcpy(out->data, crop.data, ic_tensor_numel(out) * sizeof(float));
    else if ((rc = ic_resize_bilinear_forward(out, &crop)) != 0)
        return rc;
    if (mul)
        for (int c = 0; c < t->c; c++) {
            float *p = ic_tensor_at(out, 0, c);
            for (size_t i = 0; i < ic_tensor_plane(out); i++)
                p[i] *= mul[c];
        }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Decode, resize, normalise and run the network; outputs at the image size. */
static int run_network(ic_segment_result *res, const ic_forward *fw, ic_arena *arena,
                       const ic_image *img, const ic_segment_opts *opts)
{
    const ic_pdl_config *cfg = ic_pdl_get_config(fw->net);
    double t0 = now_s();
    int nw = img->w, nh = img->h, rc;
    int short_edge = cfg->min_size_test, max_size = cfg->max_size_test;
    if (opts->size > 0) {
        max_size = short_edge > 0 && max_size > 0
                       ? (int)((int64_t)max_size * opts->size / short_edge)
                       : 0;
        short_edge = opts->size;
    }
    if (short_edge > 0 && (rc = ic_image_fit_size(img->w, img->h, short_edge, max_size, &nw, &nh)))
        return rc;
    ic_image small = {0};
    const ic_image *src = img;
    if (nw != img->w || nh != img->h) {
        if ((rc = ic_image_resize_bilinear(img, nw, nh, &small)) != 0)
            return rc;
        src = &small;
    }
    int div = cfg->size_divisibility, ph = nh, pw = nw;
    if (div > 0) {
        ph = (nh + div - 1) / div * div;
        pw = (nw + div - 1) / div * div;
    }
    ic_tensor x;
    rc = ic_tensor_alloc(&x, arena, 1, 3, ph, pw);
    if (!rc)
        rc = ic_image_to_tensor(src, cfg->pixel_mean, cfg->pixel_std, &x, 0);
    ic_image_free(&small);
    if (rc)
        return rc;
    res->net_width = nw;
    res->net_height = nh;
    double t1 = now_s();
    res->t.preprocess = t1 - t0;

    int reps = opts->repeat > 1 ? opts->repeat : 1;
    double times[64];
    ic_pdl_outputs out;
    ic_arena_mark mark = ic_arena_get_mark(arena);
    for (int r = 0; r < reps; r++) {
        if (r)
            ic_arena_rewind(arena, mark);
        double a = now_s();
        rc = ic_forward_run(fw, &x, &opts->calib, 0, arena, &out);
        if (rc)
            return rc;
        times[r % 64] = now_s() - a;
    }
    int nt = reps < 64 ? reps : 64;
    qsort(times, (size_t)nt, sizeof times[0], cmp_double);
    res->t.forward_median = times[nt / 2];
    res->m_mu_mean = out.m_mu_mean;
    res->m_var_mean = out.m_var_mean;
    res->drift = out.drift[0];
    double t2 = now_s();
    res->t.forward = (t2 - t1) / reps;

    float omul[2] = {(float)img->h / (float)nh, (float)img->w / (float)nw};
    res->raw.peak_bytes = out.peak_bytes;
    rc = crop_resize(arena, &out.sem, nh, nw, img->h, img->w, NULL, &res->raw.sem);
    if (!rc)
        rc = crop_resize(arena, &out.center, nh, nw, img->h, img->w, NULL, &res->raw.center);
    if (!rc)
        rc = crop_resize(arena, &out.offset, nh, nw, img->h, img->w,
                         (nh != img->h || nw != img->w) ? omul : NULL, &res->raw.offset);
    res->t.post += now_s() - t2;
    return rc;
}

void ic_segment_pano_params(ic_pano_params *pp, int things[IC_PDL_MAX_CLASSES],
                            const ic_pdl_config *cfg)
{
    int nt = 0;
    for (int c = 0; c < cfg->num_classes; c++)
        if (cfg->is_thing[c])
            things[nt++] = c;
    ic_pano_params_default(pp);
    pp->thing_ids = things;
    pp->n_thing_ids = nt;
    pp->n_classes = cfg->num_classes;
    pp->label_divisor = cfg->label_divisor;
    pp->stuff_area = cfg->stuff_area;
    pp->threshold = cfg->center_threshold;
    pp->nms_kernel = cfg->nms_kernel;
    pp->top_k = cfg->top_k;
}

static int postprocess(ic_segment_result *res, const ic_pdl *net, ic_arena *arena)
{
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    double t0 = now_s();
    size_t n = (size_t)res->width * (size_t)res->height;
    res->sem = ic_arena_alloc(arena, n * sizeof(int32_t));
    res->maxprob = ic_arena_floats(arena, n);
    res->entropy = ic_arena_floats(arena, n);
    if (!res->sem || !res->maxprob || !res->entropy)
        return ic_error_prefix(IC_ENOMEM, "segment: semantic maps");
    int rc = ic_softmax_stats(res->sem, res->maxprob, res->entropy, &res->raw.sem);
    if (rc)
        return rc;
    int things[IC_PDL_MAX_CLASSES];
    ic_pano_params pp;
    ic_segment_pano_params(&pp, things, cfg);
    ic_pano_inputs in = {.h = res->height,
                         .w = res->width,
                         .sem = res->sem,
                         .center = res->raw.center.data,
                         .offset = res->raw.offset.data,
                         .sem_scores = res->raw.sem.data,
                         .sem_maxprob = res->maxprob};
    if ((rc = ic_pano_run(&res->pano, arena, &pp, &in)) != 0)
        return rc;
    res->segment_ids = ic_arena_alloc(arena, (size_t)(res->pano.n_segments + 1) * sizeof(int32_t));
    if (!res->segment_ids)
        return ic_error_prefix(IC_ENOMEM, "segment: segment ids");
    for (int i = 0; i < res->pano.n_segments; i++)
        res->segment_ids[i] = i + 1;
    ic_conf_stats_init(&res->conf);
    ic_conf_stats_add(&res->conf, res->maxprob, res->entropy, n);
    res->t.post += now_s() - t0;
    return 0;
}

static int evaluate(ic_segment_result *res, const ic_pdl_config *cfg, ic_arena *arena,
                    const ic_segment_gt *gt)
{
    double t0 = now_s();
    if (gt->w != res->width || gt->h != res->height)
        return ic_error_set(IC_ESHAPE, "label is %dx%d but the image is %dx%d", gt->w, gt->h,
                            res->width, res->height);
    ic_eval ev;
    int rc = ic_eval_init(&ev, cfg);
    if (rc)
        return rc;
    rc = ic_eval_add(&ev, arena, (size_t)res->width * (size_t)res->height, res->sem, res->maxprob,
                     &res->pano, gt->sem, gt->ids, gt->segments, gt->n_segments);
    if (!rc) {
        ic_eval_summarize(&ev, &res->metrics);
        res->has_gt = 1;
    }
    ic_eval_deinit(&ev);
    res->t.metrics = now_s() - t0;
    return rc;
}

/* ---------------------------------------------------------------- encoders */

static int32_t coco_id_of(const ic_segment_result *res, int32_t pan)
{
    int lo = 0, hi = res->pano.n_segments - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int32_t v = res->pano.segments[mid].id;
        if (v == pan)
            return res->segment_ids[mid];
        if (v < pan)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

void ic_segment_panoptic_ids(const ic_segment_result *res, int32_t *ids)
{
    size_t n = (size_t)res->width * (size_t)res->height;
    int32_t last_pan = INT32_MIN, last_id = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t p = res->pano.pan[i];
        if (p != last_pan) {
            last_pan = p;
            last_id = p < 0 ? 0 : coco_id_of(res, p);
        }
        ids[i] = last_id;
    }
}

static int encode_outputs(ic_segment_result *res, const ic_pdl_config *cfg, const ic_image *img,
                          unsigned outputs, ic_arena *arena)
{
    int w = res->width, h = res->height, rc = 0;
    size_t n = (size_t)w * (size_t)h;
    if (outputs & IC_OUT_PANOPTIC_PNG) {
        ic_image rgb = {0};
        if ((rc = ic_image_alloc(&rgb, w, h, 3, 8)) != 0)
            return rc;
        int32_t *ids = ic_arena_alloc(arena, n * sizeof *ids);
        if (!ids) {
            ic_image_free(&rgb);
            return ic_error_prefix(IC_ENOMEM, "segment: panoptic PNG ids");
        }
        ic_segment_panoptic_ids(res, ids);
        rc = ic_image_ids_to_rgb(ids, w, h, rgb.data);
        if (!rc)
            rc = ic_image_encode_png(&rgb, NULL, &res->panoptic_png, &res->panoptic_png_len);
        ic_image_free(&rgb);
        if (rc)
            return rc;
    }
    if (outputs & IC_OUT_SEMANTIC_PNG) {
        uint8_t *idx = ic_arena_alloc(arena, n);
        if (!idx)
            return ic_error_prefix(IC_ENOMEM, "segment: semantic PNG");
        for (size_t i = 0; i < n; i++)
            idx[i] = (uint8_t)res->sem[i];
        if ((rc = ic_image_encode_png_indexed(idx, w, h, &cfg->class_colors[0][0], cfg->num_classes,
                                              NULL, &res->semantic_png, &res->semantic_png_len)))
            return rc;
    }
    if (outputs & IC_OUT_CONFIDENCE_PNG) {
        ic_image g = {0};
        if ((rc = ic_image_alloc(&g, w, h, 1, 8)) != 0)
            return rc;
        uint8_t *p = g.data;
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)lrintf(res->maxprob[i] * 255.0f);
        rc = ic_image_encode_png(&g, NULL, &res->confidence_png, &res->confidence_png_len);
        ic_image_free(&g);
        if (rc)
            return rc;
    }
    if (outputs & IC_OUT_OVERLAY_PNG) {
        ic_image ov = {0};
        if ((rc = ic_image_alloc(&ov, w, h, 3, 8)) != 0)
            return rc;
        const uint8_t *src = img->data;
        uint8_t *dst = ov.data;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                int32_t p = res->pano.pan[i];
                const uint8_t *s = src + i * 3;
                uint8_t *d = dst + i * 3;
                if (p < 0) { /* void: the image, dimmed */
                    for (int k = 0; k < 3; k++)
                        d[k] = (uint8_t)(s[k] * 3 / 4);
                    continue;
                }
                int cls = p / cfg->label_divisor;
                int edge = (x + 1 < w && res->pano.pan[i + 1] != p) ||
                           (y + 1 < h && res->pano.pan[i + (size_t)w] != p);
                for (int k = 0; k < 3; k++)
                    d[k] = edge && cfg->is_thing[cls] ? 255
                                                      : (uint8_t)((s[k] + cfg->class_colors[cls][k]) / 2);
            }
        rc = ic_image_encode_png(&ov, NULL, &res->overlay_png, &res->overlay_png_len);
        ic_image_free(&ov);
        if (rc)
            return rc;
    }
    if (outputs & IC_OUT_RLE) {
        res->rle = ic_arena_calloc(arena, (size_t)res->pano.n_segments + 1, sizeof(char *));
        if (!res->rle)
            return ic_error_prefix(IC_ENOMEM, "segment: RLE list");
        for (int i = 0; i < res->pano.n_segments; i++) {
            uint32_t *counts;
            size_t nc;
            const ic_pano_segment *s = &res->pano.segments[i];
            if ((rc = ic_rle_encode_id(&counts, &nc, arena, res->pano.pan, h, w, s->id, s->bbox)))
                return rc;
            size_t len = ic_rle_string_len(counts, nc);
            res->rle[i] = ic_arena_alloc(arena, len + 1);
            if (!res->rle[i])
                return ic_error_prefix(IC_ENOMEM, "segment: RLE string");
            ic_rle_to_string(res->rle[i], counts, nc);
            res->rle[i][len] = '\0';
        }
    }
    return 0;
}

void ic_segment_result_deinit(ic_segment_result *res)
{
    ic_free(res->panoptic_png);
    ic_free(res->semantic_png);
    ic_free(res->confidence_png);
    ic_free(res->overlay_png);
    res->panoptic_png = res->semantic_png = res->confidence_png = res->overlay_png = NULL;
}

int ic_segment_run(ic_segment_result *res, const ic_forward *fw, ic_arena *arena,
                   const void *image, size_t image_len, const ic_segment_opts *opts,
                   const ic_segment_gt *gt)
{
    memset(res, 0, sizeof *res);
    const ic_pdl *net = fw->net;
    const ic_pdl_config *cfg = ic_pdl_get_config(net);
    if (!fw->run && !ic_pdl_supports(net, opts->calib.mode)) {
        return ic_error_set(IC_EINVAL, "calibration mode '%s' is not available for model '%s'",
                            ic_calib_mode_name(opts->calib.mode), cfg->name);
    }
    double t0 = now_s();
    ic_image img = {0};
    ic_image_decode_opts dopts = {.limits = opts->limits, .channels = 3};
    int rc = ic_image_decode(image, image_len, &dopts, &img);
    if (rc)
        return rc;
    res->width = img.w;
    res->height = img.h;
    res->t.decode = now_s() - t0;
    rc = run_network(res, fw, arena, &img, opts);
    if (!rc)
        rc = postprocess(res, net, arena);
    if (!rc && gt)
        rc = evaluate(res, cfg, arena, gt);
    if (!rc) {
        double t1 = now_s();
        rc = encode_outputs(res, cfg, &img, opts->outputs, arena);
        res->t.encode = now_s() - t1;
    }
    ic_image_free(&img);
    if (rc)
        ic_segment_result_deinit(res);
    return rc;
}
