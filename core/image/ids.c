/* COCO-panoptic RGB <-> id map conversion (see ids.h). */
#include "image/ids.h"

#include <stddef.h>

#include "base/err.h"

int ic_image_ids_from_rgb(const ic_image *img, int32_t *ids)
{
    if (!img || !img->data || !ids)
        return ic_error_set(IC_EINVAL, "ic_image_ids_from_rgb: NULL argument");
    if (img->depth != 8 || (img->c != 3 && img->c != 4) || img->w <= 0 || img->h <= 0)
        return ic_error_set(IC_EINVAL,
                            "panoptic ids need an 8-bit RGB image, got %d channel(s) of %d bits",
                            img->c, img->depth);
    const uint8_t *p = img->data;
    const size_t n = (size_t)img->w * (size_t)img->h, c = (size_t)img->c;
    for (size_t i = 0; i < n; i++, p += c)
        ids[i] = (int32_t)p[0] | (int32_t)p[1] << 8 | (int32_t)p[2] << 16;
    return 0;
}

int ic_image_ids_to_rgb(const int32_t *ids, int w, int h, uint8_t *rgb)
{
    if (!ids || !rgb || w <= 0 || h <= 0)
        return ic_error_set(IC_EINVAL, "ic_image_ids_to_rgb: bad argument (%dx%d)", w, h);
    const size_t n = (size_t)w * (size_t)h;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id > IC_IMAGE_ID_MAX)
            return ic_error_set(IC_EINVAL,
                                "segment id %ld at (%zu, %zu) does not fit in 24-bit RGB",
                                (long)id, i % (size_t)w, i / (size_t)w);
        rgb[3 * i] = (uint8_t)(id & 0xFF);
        rgb[3 * i + 1] = (uint8_t)(id >> 8 & 0xFF);
        rgb[3 * i + 2] = (uint8_t)(id >> 16 & 0xFF);
    }
    return 0;
}
