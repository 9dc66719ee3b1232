/* JSON encoding of segmentation results (see result_json.h). */
#include "infer/result_json.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"

json_t *ic_json_base64(const unsigned char *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out_len = (len + 2) / 3 * 4;
    char *out = ic_malloc(out_len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? tab[v & 63] : '=';
    }
    json_t *s = json_stringn(out, o);
    ic_free(out);
    return s;
}

/* Non-finite numbers (an empty bin's mean, a class that never appeared)
 * become null, since JSON has no NaN. Dump with JSON_REAL_PRECISION(6) to
 * keep responses short. */
static json_t *num(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *ms(double seconds)
{
    return json_real(round(seconds * 1e5) / 100.0);
}

static json_t *pq_json(const ic_pq_result *r)
{
    return json_pack("{s:o, s:o, s:o, s:i}", "pq", num(r->pq), "sq", num(r->sq), "rq", num(r->rq),
                     "n", r->n);
}

static json_t *confidence_json(const ic_segment_result *res)
{
    json_t *hist = json_array();
    for (int b = 0; b < IC_CALIB_BINS; b++)
        json_array_append_new(hist, json_integer((json_int_t)res->conf.hist[b]));
    return json_pack("{s:o, s:o, s:i, s:o}", "mean_max_prob", num(ic_conf_stats_mean_conf(&res->conf)),
                     "mean_entropy", num(ic_conf_stats_mean_entropy(&res->conf)), "bins",
                     IC_CALIB_BINS, "histogram", hist);
}

json_t *ic_eval_summary_json(const ic_eval_summary *m, const ic_pdl_config *cfg)
{
    json_t *rel = json_array();
    for (int b = 0; b < IC_CALIB_BINS; b++) {
        const ic_ece_bin *bin = &m->bins[b];
        json_array_append_new(rel, json_pack("{s:f, s:f, s:I, s:o, s:o}", "lo", bin->lo, "hi",
                                             bin->hi, "count", (json_int_t)bin->count,
                                             "mean_confidence",
                                             bin->count ? num(bin->mean_conf) : json_null(),
                                             "accuracy", bin->count ? num(bin->accuracy) : json_null()));
    }
    json_t *iou = json_object();
    for (int c = 0; c < cfg->num_classes; c++)
        json_object_set_new(iou, cfg->class_names[c], num(m->class_iou[c]));
    json_t *o = json_pack("{s:i, s:o, s:I, s:o, s:o, s:o, s:o}", "images", m->n_images, "ece",
                          num(m->ece), "labelled_pixels", (json_int_t)m->labelled_pixels,
                          "reliability", rel, "miou", num(m->miou), "pixel_accuracy",
                          num(m->pixel_acc), "class_iou", iou);
    if (o && m->has_pq) {
        json_object_set_new(o, "pq", pq_json(&m->pq_all));
        json_object_set_new(o, "pq_things", pq_json(&m->pq_things));
        json_object_set_new(o, "pq_stuff", pq_json(&m->pq_stuff));
    }
    return o;
}

static json_t *segments_json(const ic_segment_result *res, const ic_pdl_config *cfg)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < res->pano.n_segments; i++) {
        const ic_pano_segment *s = &res->pano.segments[i];
        json_t *o = json_pack("{s:i, s:i, s:s, s:b, s:I, s:[i,i,i,i], s:o}", "id", res->segment_ids[i],
                              "category_id", s->category_id, "category",
                              cfg->class_names[s->category_id], "isthing", s->isthing, "area",
                              (json_int_t)s->area, "bbox", s->bbox[0], s->bbox[1], s->bbox[2],
                              s->bbox[3], "score", num(s->score));
        if (o && res->rle)
            json_object_set_new(o, "rle",
                                json_pack("{s:[i,i], s:s}", "size", res->height, res->width, "counts",
                                          res->rle[i]));
        json_array_append_new(arr, o);
    }
    return arr;
}

json_t *ic_segment_result_json(const ic_segment_result *res, const ic_pdl_config *cfg,
                               const ic_calib_opts *calib)
{
    json_t *cal = json_pack("{s:s, s:o, s:o}", "mode", ic_calib_mode_name(calib->mode),
                            "mean_m_mean", num(res->m_mu_mean), "mean_m_var", num(res->m_var_mean));
    if (cal && calib->mode == IC_CALIB_MANUAL)
        json_object_set_new(cal, "m", num(calib->m));
    json_t *t = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "decode", ms(res->t.decode),
                          "preprocess", ms(res->t.preprocess), "forward", ms(res->t.forward),
                          "forward_median", ms(res->t.forward_median), "postprocess",
                          ms(res->t.post), "metrics", ms(res->t.metrics), "encode",
                          ms(res->t.encode));
    json_t *masks = json_object();
    struct {
        const char *name;
        const unsigned char *data;
        size_t len;
    } m[] = {{"panoptic_png", res->panoptic_png, res->panoptic_png_len},
             {"semantic_png", res->semantic_png, res->semantic_png_len},
             {"confidence_png", res->confidence_png, res->confidence_png_len},
             {"overlay_png", res->overlay_png, res->overlay_png_len}};
    for (size_t i = 0; masks && i < sizeof m / sizeof m[0]; i++)
        if (m[i].data)
            json_object_set_new(masks, m[i].name, ic_json_base64(m[i].data, m[i].len));
    json_t *root = json_pack("{s:s, s:{s:i, s:i}, s:{s:i, s:i}, s:o, s:o, s:o, s:o, s:o}", "model",
                             cfg->name, "image", "width", res->width, "height", res->height, "network_input",
                             "width", res->net_width, "height", res->net_height, "calibration", cal,
                             "timings_ms", t, "segments", segments_json(res, cfg), "masks", masks,
                             "confidence", confidence_json(res));
    if (root)
        json_object_set_new(root, "drift_score", num(res->drift));
    if (root && res->has_gt)
        json_object_set_new(root, "metrics", ic_eval_summary_json(&res->metrics, cfg));
    return root;
}
