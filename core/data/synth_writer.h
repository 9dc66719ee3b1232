/* Writing SynthCity datasets to disk in the COCO-panoptic layout.
 *
 * DIR/images/NNNNNN.png    RGB image
 * DIR/panoptic/NNNNNN.png  segment ids, id = R + 256 G + 65536 B, 0 = void
 * DIR/depth/NNNNNN.png     16-bit gray, centimetres along the ray, capped
 *                          at 65535 (so sky, at 1000 m, reads 65535)
 * DIR/panoptic.json        "info", "images", "annotations" (segments_info:
 *                          id, category_id = train id, iscrowd, area, bbox)
 *                          and "categories" (id = train id, name, isthing,
 *                          color)
 * NNNNNN is the scene index, so datasets of one seed with disjoint index
 * ranges never collide and a domain's files pair with every other domain's. */
#ifndef IC_DATA_SYNTH_WRITER_H
#define IC_DATA_SYNTH_WRITER_H

#include <stdint.h>

#include "data/synth.h"

/* What to write. Zero-initialise, then set out_dir and count at least. */
typedef struct ic_synth_write_opts {
    const char *out_dir; /* created (with parents) if missing */
    ic_synth_domain domain;
    uint64_t seed;
    uint64_t start;      /* first scene index */
    int count;           /* number of images, >= 1 */
    int h, w;            /* 0 selects IC_SYNTH_DEFAULT_H / _W */
    int threads;         /* worker threads; <= 1 renders on the calling thread */
} ic_synth_write_opts;

/* Called after each finished image (from worker threads, serialised). */
typedef void (*ic_synth_progress_fn)(int done, int total, void *user);

/* Renders and writes a dataset. progress may be NULL. Returns 0, IC_EINVAL
 * (bad options: the message names them), IC_EIO (a directory or file could
 * not be written: the message names the path), IC_ENOMEM. */
int ic_synth_write_dataset(const ic_synth_write_opts *o, ic_synth_progress_fn progress, void *user);

/* Writes s->rgb as an RGB PNG to `path`. Returns 0, IC_EIO, IC_ENOMEM. */
int ic_synth_write_rgb_png(const ic_synth_sample *s, const char *path);

/* Writes s->ids as a COCO-panoptic RGB PNG to `path`. */
int ic_synth_write_ids_png(const ic_synth_sample *s, const char *path);

/* Writes the semantic map in Cityscapes label colours (void black), a
 * human-readable view of the labels, to `path`. */
int ic_synth_write_semantic_png(const ic_synth_sample *s, const char *path);

/* Writes s->depth as 16-bit centimetres (capped at 65535) to `path`. */
int ic_synth_write_depth_png(const ic_synth_sample *s, const char *path);

/* Creates a directory and its parents (like mkdir -p). Returns 0, IC_EIO. */
int ic_synth_mkdirs(const char *path);

#endif
