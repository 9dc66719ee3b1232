/* libFuzzer target: ic_image_decode (JPEG and PNG sniffing and decoding)
 * under tight limits, as the daemon decodes every upload. The first byte
 * picks the decode options (channels, keep16, keep_values, ignore_exif) so
 * that every output path is reached; the rest is the file. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    static const int channels[4] = {0, 1, 3, 4};
    ic_image_decode_opts o = ic_image_decode_opts_default();
    /* Small limits keep one input cheap; headers claiming more must be
     * refused before any pixel allocation. */
    o.limits.max_w = 2048;
    o.limits.max_h = 2048;
    o.limits.max_pixels = 1 << 20;
    o.channels = channels[sel & 3];
    o.keep16 = (sel >> 2) & 1;
    o.keep_values = (sel >> 3) & 1;
    o.ignore_exif = (sel >> 4) & 1;
    ic_image img;
    memset(&img, 0, sizeof img);
    ic_image_sniff(data + 1, size - 1);
    if (ic_image_decode(data + 1, size - 1, &o, &img) == 0) {
        /* Touch every byte so a short buffer shows up under ASan. */
        size_t bytes = (size_t)img.w * (size_t)img.h * (size_t)img.c * (img.depth == 16 ? 2 : 1);
        volatile uint8_t acc = 0;
        for (size_t i = 0; i < bytes; i++)
            acc ^= ((const uint8_t *)img.data)[i];
        (void)acc;
        ic_image_free(&img);
    }
    return 0;
}
