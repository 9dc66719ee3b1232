/* A COCO-panoptic folder: DIR/panoptic.json (images, annotations,
 * categories), the images under DIR/images/ and the id PNGs (ids.h) under
 * DIR/panoptic/, as `instcal synth` writes them and training, validation
 * and `instcal eval` read them.
 *
 * ic_coco_open() reads and checks the whole JSON once: every annotation
 * must name its label file, an image entry of its image_id with a file
 * name, and a segments_info array whose segments have an integer id in
 * 1..IC_IMAGE_ID_MAX (the ids an RGB PNG can hold) and an integer
 * category_id >= 0; the first that does not is an IC_EFORMAT naming the
 * file, the annotation and what is wrong. The files of an image are read
 * on demand (ic_coco_read). Category ids are the dataset's: mapping them to
 * a model's classes is the caller's. */
#ifndef IC_IMAGE_COCO_H
#define IC_IMAGE_COCO_H

#include <stddef.h>
#include <stdint.h>

typedef struct ic_coco_segment {
    int32_t id;      /* value in the id PNG, 1..IC_IMAGE_ID_MAX */
    int category_id; /* the dataset's category */
    int iscrowd;
} ic_coco_segment;

/* One annotated image. */
typedef struct ic_coco_image {
    const char *image;         /* file name under DIR/images/ */
    const char *label;         /* file name under DIR/panoptic/ */
    int width, height;         /* of the image entry (0 where absent) */
    const ic_coco_segment *segments;
    int n_segments;
    const char *segments_json; /* the segments_info array as compact JSON */
} ic_coco_image;

typedef struct ic_coco_category {
    int id;
    const char *name; /* NULL where absent */
} ic_coco_category;

typedef struct ic_coco ic_coco;

/* Opens DIR. Returns 0, IC_EIO (no readable DIR/panoptic.json, or not JSON:
 * the message has the parser's line), IC_EFORMAT (no "images" or
 * "annotations" array, a bad annotation or segment), IC_ENOMEM. *ret is
 * NULL on failure. */
int ic_coco_open(ic_coco **ret, const char *dir);

/* Frees and sets *c to NULL; NULL is a no-op. */
void ic_coco_free(ic_coco **c);

/* Number of annotated images, in the JSON's order. */
int ic_coco_count(const ic_coco *c);

/* Image i (0 <= i < count), valid until ic_coco_free. */
const ic_coco_image *ic_coco_get(const ic_coco *c, int i);

/* The "categories" array (may be empty). */
const ic_coco_category *ic_coco_categories(const ic_coco *c, int *n);

/* Reads image i's files (at most max_bytes each) into ic_malloc'd buffers
 * the caller frees with ic_free: *img from DIR/images/, *lbl from
 * DIR/panoptic/; lbl may be NULL to read the image only. Returns 0,
 * IC_EINVAL (i out of range), IC_EIO (the message names the path),
 * IC_ELIMIT (larger than max_bytes), IC_ENOMEM. */
int ic_coco_read(const ic_coco *c, int i, size_t max_bytes, unsigned char **img, size_t *img_len,
                 unsigned char **lbl, size_t *lbl_len);

#endif
