/* The JPEG-quality op: encode to memory with libjpeg and decode back.
 *
 * libturbojpeg's tj* API is not installed on the build machines (no
 * pkg-config entry), so this uses the jpeglib.h API that jpeg_dep already
 * provides. The destination manager grows an ic_malloc'd buffer, so fault
 * injection reaches the compressed stream; libjpeg's own work memory comes
 * from malloc. libjpeg's fatal errors longjmp back here instead of calling
 * exit(), and the pixels are only replaced once decoding has succeeded. */
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "augment/aug_internal.h"
#include "augment/photometric.h"
#include "base/alloc.h"
#include "base/err.h"

typedef struct jq_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jq_err;

static void jq_error_exit(j_common_ptr cinfo)
{
    jq_err *e = (jq_err *)cinfo->err;
    e->mgr.format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static void jq_silent(j_common_ptr cinfo, int level)
{
    (void)cinfo;
    (void)level;
}

typedef struct jq_dest {
    struct jpeg_destination_mgr pub;
    unsigned char *buf;
    size_t cap;
    int oom;
} jq_dest;

static void jq_init_dest(j_compress_ptr cinfo)
{
    jq_dest *d = (jq_dest *)cinfo->dest;
    d->pub.next_output_byte = d->buf;
    d->pub.free_in_buffer = d->cap;
}

static boolean jq_empty(j_compress_ptr cinfo)
{
    jq_dest *d = (jq_dest *)cinfo->dest;
    unsigned char *nb = ic_realloc(d->buf, d->cap * 2u);
    if (!nb) {
        d->oom = 1;
        ERREXIT(cinfo, JERR_OUT_OF_MEMORY);
    }
    /* libjpeg asks for more only when the buffer is completely full. */
    d->pub.next_output_byte = nb + d->cap;
    d->pub.free_in_buffer = d->cap;
    d->buf = nb;
    d->cap *= 2u;
    return TRUE;
}

static void jq_term(j_compress_ptr cinfo)
{
    (void)cinfo;
}

/* Encodes and decodes; *out receives the decoded w*h*3 samples (ic_malloc).
 * A separate function so that setjmp's caller has no live locals to lose. */
static int roundtrip(const ic_image *img, int quality, uint8_t **out)
{
    struct jpeg_compress_struct cc;
    struct jpeg_decompress_struct dc;
    jq_err err;
    jq_dest dest;
    volatile int have_c = 0, have_d = 0;
    uint8_t *volatile pix = NULL;
    memset(&dest, 0, sizeof dest);
    /* A quarter of the raw size holds even quality 95 of natural images. */
    dest.cap = aug_nsamples(img) / 4u + 4096u;
    dest.buf = ic_malloc(dest.cap);
    if (!dest.buf)
        return ic_error_set(IC_ENOMEM, "jpeg op: out of memory for the stream");
    cc.err = jpeg_std_error(&err.mgr);
    dc.err = cc.err;
    err.mgr.error_exit = jq_error_exit;
    err.mgr.emit_message = jq_silent;
    if (setjmp(err.jump)) {
        int rc = dest.oom ? ic_error_set(IC_ENOMEM, "jpeg op: out of memory")
                          : ic_error_set(IC_EIO, "jpeg op: libjpeg: %s", err.msg);
        if (have_c)
            jpeg_destroy_compress(&cc);
        if (have_d)
            jpeg_destroy_decompress(&dc);
        ic_free(dest.buf);
        ic_free(pix);
        return rc;
    }
    jpeg_create_compress(&cc);
    have_c = 1;
    dest.pub.init_destination = jq_init_dest;
    dest.pub.empty_output_buffer = jq_empty;
    dest.pub.term_destination = jq_term;
    cc.dest = &dest.pub;
    cc.image_width = (JDIMENSION)img->w;
    cc.image_height = (JDIMENSION)img->h;
    cc.input_components = 3;
    cc.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cc);
    jpeg_set_quality(&cc, quality, TRUE);
    jpeg_start_compress(&cc, TRUE);
    const size_t row = (size_t)img->w * 3u;
    while (cc.next_scanline < cc.image_height) {
        JSAMPROW r = (JSAMPROW)((uint8_t *)img->data + (size_t)cc.next_scanline * row);
        jpeg_write_scanlines(&cc, &r, 1);
    }
    jpeg_finish_compress(&cc);
    size_t len = dest.cap - dest.pub.free_in_buffer;
    jpeg_destroy_compress(&cc);
    have_c = 0;

    pix = ic_malloc(aug_nsamples(img));
    if (!pix) {
        ic_free(dest.buf);
        return ic_error_set(IC_ENOMEM, "jpeg op: out of memory for the decoded image");
    }
    jpeg_create_decompress(&dc);
    have_d = 1;
    jpeg_mem_src(&dc, dest.buf, (unsigned long)len);
    jpeg_read_header(&dc, TRUE);
    dc.out_color_space = JCS_RGB;
    jpeg_start_decompress(&dc);
    while (dc.output_scanline < dc.output_height) {
        JSAMPROW r = (JSAMPROW)(pix + (size_t)dc.output_scanline * row);
        jpeg_read_scanlines(&dc, &r, 1);
    }
    jpeg_finish_decompress(&dc);
    jpeg_destroy_decompress(&dc);
    ic_free(dest.buf);
    *out = pix;
    return 0;
}

int ic_aug_jpeg(ic_aug_rng *rng, ic_image *img, float magnitude)
{
    if (!rng)
        return ic_error_set(IC_EINVAL, "jpeg: NULL rng");
    int rc = aug_check_rgb(img, magnitude, "jpeg");
    if (rc || magnitude == 0.0f)
        return rc;
    const int quality = 95 - (int)lroundf(87.0f * magnitude);
    uint8_t *pix = NULL;
    rc = roundtrip(img, quality, &pix);
    if (rc)
        return rc;
    memcpy(img->data, pix, aug_nsamples(img));
    ic_free(pix);
    return 0;
}

int ic_aug_jpeg_quality(ic_image *img, int quality)
{
    int rc = aug_check_rgb(img, 0.0f, "jpeg");
    if (rc)
        return rc;
    if (quality < 1 || quality > 100)
        return ic_error_set(IC_EINVAL, "jpeg: quality %d outside [1, 100]", quality);
    uint8_t *pix = NULL;
    rc = roundtrip(img, quality, &pix);
    if (rc)
        return rc;
    memcpy(img->data, pix, aug_nsamples(img));
    ic_free(pix);
    return 0;
}
