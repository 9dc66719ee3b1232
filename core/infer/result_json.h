/* The JSON form of a segmentation result, shared by `instcal segment` and
 * the daemon's POST /v1/segment response (docs/api.md documents the keys). */
#ifndef IC_INFER_RESULT_JSON_H
#define IC_INFER_RESULT_JSON_H

#include <jansson.h>

#include "infer/segment.h"

/* Builds the response object: image and network sizes, model, calibration
 * (mode, m, mean strengths), timings in milliseconds, segments (with COCO
 * RLE when computed), masks as base64 PNGs (those that were encoded),
 * confidence statistics, and metrics when a ground truth was given.
 * Returns a new reference, or NULL when out of memory. */
json_t *ic_segment_result_json(const ic_segment_result *res, const ic_pdl_config *cfg,
                               const ic_calib_opts *calib);

/* Metrics of an evaluation (one image or a dataset): ECE with reliability
 * bins, mIoU with per-class IoU by class name, PQ/SQ/RQ when available. */
json_t *ic_eval_summary_json(const ic_eval_summary *m, const ic_pdl_config *cfg);

/* Base64 (RFC 4648, with padding) of len bytes as a new JSON string, or NULL. */
json_t *ic_json_base64(const unsigned char *data, size_t len);

#endif
