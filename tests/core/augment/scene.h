/* A small synthetic street scene with panoptic ids for the augmentation
 * tests and the contact sheet (sky, facades with windows, trees, a pole,
 * sidewalk, road with lane marks, cars and people). Deterministic. */
#ifndef IC_TESTS_AUGMENT_SCENE_H
#define IC_TESTS_AUGMENT_SCENE_H

#include <stdint.h>

#include "image/image.h"

/* Renders a w x h scene into *img (8-bit RGB, ic_image_free) and, when
 * labels is not NULL, an ic_malloc'd w*h id map into *labels (stuff ids
 * 1..6, thing ids 1000 * class + k). Returns 0 or IC_ENOMEM. */
int test_scene_render(int w, int h, ic_image *img, int32_t **labels);

#endif
