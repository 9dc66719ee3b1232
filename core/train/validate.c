/* Validation during training: `instcal eval`'s path over a COCO-panoptic
 * directory (see validate.h). Kept apart from the loop because post/
 * panoptic.h and train/targets.h both define ic_pano_segment. */
#include "train/validate.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/err.h"
#include "infer/segment.h"
#include "model/pdl_train.h"

static int read_bytes(const char *path, unsigned char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return ic_error_set(IC_EIO, "cannot open %s", path);
    int rc = 0;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0)
        rc = ic_error_set(IC_EIO, "cannot read %s", path);
    else if (!(*buf = ic_malloc((size_t)n + 1)))
        rc = IC_ENOMEM;
    else if (fread(*buf, 1, (size_t)n, f) != (size_t)n) {
        ic_free(*buf);
        rc = ic_error_set(IC_EIO, "cannot read %s", path);
    }
    fclose(f);
    *len = (size_t)n;
    return rc;
}

/* One validation image, as `instcal eval` does it. */
static int validate_one(const ic_pdl *net, ic_arena *arena, ic_eval *ev, const char *dir,
                        json_t *ann, json_t *images, const ic_segment_opts *so)
{
    json_t *segs = json_object_get(ann, "segments_info"), *jid = json_object_get(ann, "image_id");
    const char *label = json_string_value(json_object_get(ann, "file_name")), *img_name = NULL;
    size_t i;
    json_t *im;
    json_array_foreach(images, i, im)
    {
        if (json_integer_value(json_object_get(im, "id")) == json_integer_value(jid)) {
            img_name = json_string_value(json_object_get(im, "file_name"));
            break;
        }
    }
    if (!json_is_array(segs) || !label || !img_name)
        return ic_error_set(IC_EFORMAT, "%s: annotation without image or segments", dir);
    char path[4096];
    unsigned char *img = NULL, *lbl = NULL;
    size_t ilen = 0, llen = 0;
    snprintf(path, sizeof path, "%s/images/%s", dir, img_name);
    int rc = read_bytes(path, &img, &ilen);
    snprintf(path, sizeof path, "%s/panoptic/%s", dir, label);
    if (!rc)
        rc = read_bytes(path, &lbl, &llen);
    char *segtext = rc ? NULL : json_dumps(segs, JSON_COMPACT);
    ic_segment_gt gt;
    ic_segment_result res;
    if (!rc)
        rc = segtext ? ic_segment_gt_load(&gt, arena, ic_pdl_get_config(net), lbl, llen, segtext,
                                          strlen(segtext), NULL)
                     : IC_ENOMEM;
    if (!rc)
        rc = ic_segment_run(&res, &(ic_forward){.net = net}, arena, img, ilen, so, NULL);
    if (!rc) {
        if (gt.w != res.width || gt.h != res.height)
            rc = ic_error_set(IC_ESHAPE, "%s: label %dx%d, image %dx%d", label, gt.w, gt.h,
                              res.width, res.height);
        else
            rc = ic_eval_add(ev, arena, (size_t)res.width * res.height, res.sem, res.maxprob,
                             &res.pano, gt.sem, gt.ids, gt.segments, gt.n_segments);
        ic_segment_result_deinit(&res);
    }
    free(segtext);
    ic_free(img);
    ic_free(lbl);
    return rc;
}

int ic_train_validate(ic_pdl *net, const char *dir, const ic_calib_opts *calib, int limit,
                      ic_val_summary *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/panoptic.json", dir);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return ic_error_set(IC_EIO, "%s: %s (line %d)", path, jerr.text, jerr.line);
    json_t *anns = json_object_get(root, "annotations"), *images = json_object_get(root, "images");
    int rc = ic_pdl_refold(net);
    ic_eval ev;
    ic_arena arena;
    ic_arena_init(&arena, 0, 0);
    if (!rc)
        rc = ic_eval_init(&ev, ic_pdl_get_config(net));
    if (rc) {
        json_decref(root);
        return rc;
    }
    ic_segment_opts so = {.calib = *calib, .outputs = 0};
    size_t n = json_array_size(anns);
    if (limit > 0 && (size_t)limit < n)
        n = (size_t)limit;
    for (size_t i = 0; !rc && i < n; i++) {
        ic_arena_reset(&arena);
        rc = validate_one(net, &arena, &ev, dir, json_array_get(anns, i), images, &so);
    }
    if (!rc) {
        ic_eval_summary s;
        ic_eval_summarize(&ev, &s);
        *out = (ic_val_summary){.n_images = s.n_images, .has_pq = s.has_pq, .miou = s.miou,
                                .pq = s.pq_all.pq, .ece = s.ece};
    }
    ic_eval_deinit(&ev);
    ic_arena_deinit(&arena);
    json_decref(root);
    return rc;
}

void ic_val_summary_print(FILE *f, const char *what, const ic_val_summary *s)
{
    fprintf(f, "%s: %d images  mIoU %.2f  PQ %.2f  ECE %.2f\n", what, s->n_images, 100 * s->miou,
            s->has_pq ? 100 * s->pq : NAN, 100 * s->ece);
}
