/* Test fixture maker for the daemon's integration tests (no ImageMagick
 * needed): decodes a JPEG/PNG, resizes it and writes a JPEG or PNG.
 *
 *   mkimage IN OUT W H [QUALITY]    OUT ending in .jpg/.jpeg writes JPEG
 *                                   (QUALITY, default 85), else PNG.
 *
 * Exit status 0, or 1 with a message on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/image.h"
#include "image/png.h"
#include "image/preprocess.h"

static int write_jpeg(const ic_image *img, const char *path, int quality)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)img->w;
    c.image_height = (JDIMENSION)img->h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)((uint8_t *)img->data + (size_t)c.next_scanline * img->w * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: mkimage IN OUT W H [QUALITY]\n");
        return 1;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    fclose(f);
    ic_image src = {0}, dst = {0};
    ic_image_decode_opts o = {.channels = 3};
    if (ic_image_decode(buf, (size_t)n, &o, &src) ||
        ic_image_resize_bilinear(&src, atoi(argv[3]), atoi(argv[4]), &dst)) {
        fprintf(stderr, "%s: %s\n", argv[1], ic_error_message());
        return 1;
    }
    const char *ext = strrchr(argv[2], '.');
    int rc;
    if (ext && (!strcmp(ext, ".jpg") || !strcmp(ext, ".jpeg"))) {
        rc = write_jpeg(&dst, argv[2], argc > 5 ? atoi(argv[5]) : 85);
    } else {
        unsigned char *png;
        size_t len;
        rc = ic_image_encode_png(&dst, NULL, &png, &len);
        if (!rc) {
            FILE *g = fopen(argv[2], "wb");
            rc = !g || fwrite(png, 1, len, g) != len || fclose(g) != 0;
            ic_free(png);
        }
    }
    if (rc)
        fprintf(stderr, "cannot write %s\n", argv[2]);
    ic_image_free(&src);
    ic_image_free(&dst);
    free(buf);
    return rc ? 1 : 0;
}
