/* JPEG decoding with libjpeg-turbo and the EXIF orientation parser (see
 * jpeg.h). All libjpeg calls happen inside decode_inner(), which owns the
 * setjmp; the state it fills lives in the caller's frame so that nothing
 * the cleanup needs is clobbered by the longjmp. */
#include "image/jpeg.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* jpeglib.h first: jerror.h's message list depends on jconfig.h. */
#include <jpeglib.h>
#include <jerror.h>

#ifndef JCS_EXTENSIONS
#error "libjpeg-turbo is required (JCS_EXT_RGBA output)"
#endif

#include "base/alloc.h"
#include "base/err.h"

// ---- error manager: longjmp instead of exit(), fatal "data lost" warnings

typedef struct jpeg_err {
    struct jpeg_error_mgr pub; /* first: libjpeg casts cinfo->err to this */
    jmp_buf jb;
    int code;                  /* IC_E* for the failure */
    char msg[JMSG_LENGTH_MAX]; /* libjpeg's text */
} jpeg_err;

/* The IC_E* class of a libjpeg error; decode_inner records the message
 * once libjpeg has unwound. */
static int code_of(int msg_code)
{
    int code = IC_EFORMAT;
    switch (msg_code) {
    case JERR_OUT_OF_MEMORY:
        code = IC_ENOMEM;
        break;
    case JERR_IMAGE_TOO_BIG:
        code = IC_ELIMIT;
        break;
    case JERR_BAD_PRECISION:
    case JERR_ARITH_NOTIMPL:
    case JERR_NOT_COMPILED:
    case JERR_SOF_UNSUPPORTED:
    case JERR_CONVERSION_NOTIMPL:
    case JERR_CCIR601_NOTIMPL:
    case JERR_COMPONENT_COUNT:
        code = IC_EUNSUPPORTED;
        break;
    default:
        break;
    }
    return code;
}

static void on_error_exit(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    e->code = code_of(e->pub.msg_code);
    e->pub.format_message(cinfo, e->msg);
    longjmp(e->jb, 1);
}

/* Warnings that mean image data is missing or garbled: libjpeg would carry
 * on and fill the rest with gray, which we must not segment as if it were
 * the picture. Other warnings (extraneous bytes between markers, an unknown
 * JFIF revision, a bad ICC chunk) are common in real files and harmless. */
static int warning_is_fatal(int msg_code)
{
    switch (msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
        return 1;
    default:
        return 0;
    }
}

static void on_emit_message(j_common_ptr cinfo, int level)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    if (level < 0 && warning_is_fatal(e->pub.msg_code)) {
        e->code = IC_EFORMAT;
        e->pub.format_message(cinfo, e->msg);
        longjmp(e->jb, 1);
    }
    if (level < 0)
        e->pub.num_warnings++;
}

static void on_output_message(j_common_ptr cinfo)
{
    (void)cinfo; /* library code does not print */
}

// ---- EXIF

static unsigned rd16(const unsigned char *p, int be)
{
    return be ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0];
}

static uint32_t rd32(const unsigned char *p, int be)
{
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int ic_image_exif_orientation(const void *app1, size_t len)
{
    const unsigned char *p = app1;
    if (!p || len < 6 + 8 || memcmp(p, "Exif\0\0", 6) != 0)
        return 1;
    const unsigned char *t = p + 6; /* TIFF header; offsets are relative to it */
    size_t n = len - 6;
    int be;
    if (t[0] == 'I' && t[1] == 'I')
        be = 0;
    else if (t[0] == 'M' && t[1] == 'M')
        be = 1;
    else
        return 1;
    if (rd16(t + 2, be) != 42)
        return 1;
    uint32_t ifd = rd32(t + 4, be);
    /* Compare against n - needed, never add to an untrusted offset. */
    if (ifd < 8 || n < 2 || ifd > n - 2)
        return 1;
    unsigned count = rd16(t + ifd, be);
    size_t avail = (n - 2 - ifd) / 12;
    if (count > avail)
        count = (unsigned)avail; /* read what is there, ignore the rest */
    for (unsigned i = 0; i < count; i++) {
        const unsigned char *e = t + ifd + 2 + (size_t)i * 12;
        if (rd16(e, be) != 0x0112)
            continue;
        unsigned type = rd16(e + 2, be);
        uint32_t cnt = rd32(e + 4, be);
        uint32_t v;
        if (type == 3 && cnt >= 1) /* SHORT, stored left-justified in the value field */
            v = rd16(e + 8, be);
        else if (type == 4 && cnt >= 1) /* LONG: wrong per spec, but seen in the wild */
            v = rd32(e + 8, be);
        else
            return 1;
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

static int find_orientation(j_decompress_ptr cinfo)
{
    for (jpeg_saved_marker_ptr m = cinfo->marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 &&
            memcmp(m->data, "Exif\0\0", 6) == 0)
            return ic_image_exif_orientation(m->data, m->data_length);
    }
    return 1;
}

// ---- decoding

typedef struct jpeg_state {
    struct jpeg_decompress_struct cinfo; /* first: the progress hook casts back */
    jpeg_err err;
    struct jpeg_progress_mgr progress;
    int max_scans;   /* limit; the hook stops the decode past it */
    int over_scans;  /* the file had more */
    int created;     /* jpeg_create_decompress done */
    ic_image img;    /* pixels being decoded; freed on failure */
    int orientation; /* EXIF orientation found */
} jpeg_state;

/* Called by libjpeg while it absorbs the scans of a multi-scan file (inside
 * jpeg_start_decompress) and once per output row group: refuses a file
 * with too many scans as soon as the first one over the limit begins. */
static void on_progress(j_common_ptr cinfo)
{
    jpeg_state *st = (jpeg_state *)(void *)cinfo;
    if (st->cinfo.input_scan_number > st->max_scans) {
        st->over_scans = 1;
        st->err.code = IC_ELIMIT;
        longjmp(st->err.jb, 1);
    }
}

static const char *color_space_name(J_COLOR_SPACE cs)
{
    switch (cs) {
    case JCS_CMYK:
        return "CMYK";
    case JCS_YCCK:
        return "YCCK";
    default:
        return "an unknown colour space";
    }
}

/* Runs libjpeg; returns 0 or an IC_E* code (message recorded). */
static int decode_inner(jpeg_state *st, const void *buf, size_t len,
                        const ic_image_decode_opts *o)
{
    j_decompress_ptr cinfo = &st->cinfo;
    cinfo->err = jpeg_std_error(&st->err.pub);
    st->err.pub.error_exit = on_error_exit;
    st->err.pub.emit_message = on_emit_message;
    st->err.pub.output_message = on_output_message;
    if (setjmp(st->err.jb)) {
        if (st->over_scans)
            return ic_error_set(IC_ELIMIT, "JPEG has more than %d scans, limit %d",
                                st->max_scans, st->max_scans);
        if (st->err.code == IC_ENOMEM)
            return ic_error_set(IC_ENOMEM, "out of memory while decoding JPEG");
        if (st->err.code == IC_EUNSUPPORTED)
            return ic_error_set(IC_EUNSUPPORTED, "unsupported JPEG: %s", st->err.msg);
        if (st->err.code == IC_ELIMIT)
            return ic_error_set(IC_ELIMIT, "JPEG too large: %s", st->err.msg);
        return ic_error_set(IC_EFORMAT, "corrupt JPEG: %s", st->err.msg);
    }
    jpeg_create_decompress(cinfo);
    st->created = 1;
    st->max_scans = ic_image_limits_resolve(&o->limits).max_scans;
    st->progress.progress_monitor = on_progress;
    cinfo->progress = &st->progress;
    jpeg_mem_src(cinfo, (const unsigned char *)buf, (unsigned long)len);
    if (!o->ignore_exif)
        jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(cinfo, TRUE);
    /* Saved markers live in libjpeg's image pool, which jpeg_finish_decompress
     * releases: read the orientation now. */
    st->orientation = o->ignore_exif ? 1 : find_orientation(cinfo);

    int rc = ic_image_check_limits(&o->limits, cinfo->image_width, cinfo->image_height, "JPEG");
    if (rc)
        return rc;
    if (cinfo->data_precision != 8)
        return ic_error_set(IC_EUNSUPPORTED, "JPEG has %d-bit samples; only 8-bit is supported",
                            cinfo->data_precision);
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB:
        break;
    default:
        return ic_error_set(IC_EUNSUPPORTED,
                            "JPEG is %s (%d components); only RGB, YCbCr and grayscale are "
                            "supported",
                            color_space_name(cinfo->jpeg_color_space), cinfo->num_components);
    }

    int c = o->channels;
    if (c == 0)
        c = cinfo->jpeg_color_space == JCS_GRAYSCALE ? 1 : 3;
    cinfo->out_color_space = c == 1 ? JCS_GRAYSCALE : c == 3 ? JCS_RGB : JCS_EXT_RGBA;
    jpeg_start_decompress(cinfo);
    if (cinfo->output_components != c || cinfo->output_width != cinfo->image_width ||
        cinfo->output_height != cinfo->image_height)
        return ic_error_set(IC_EUNSUPPORTED, "libjpeg produced %ux%ux%d, expected %ux%ux%d",
                            cinfo->output_width, cinfo->output_height, cinfo->output_components,
                            cinfo->image_width, cinfo->image_height, c);
    rc = ic_image_alloc(&st->img, (int)cinfo->output_width, (int)cinfo->output_height, c, 8);
    if (rc)
        return rc;
    const size_t stride = ic_image_row_bytes(&st->img);
    unsigned char *base = st->img.data;
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW rows[8];
        unsigned want = cinfo->output_height - cinfo->output_scanline;
        if (want > 8)
            want = 8;
        for (unsigned i = 0; i < want; i++)
            rows[i] = base + (size_t)(cinfo->output_scanline + i) * stride;
        /* With a memory source libjpeg never suspends; 0 rows would mean a
         * bug, and looping on it would hang the worker. */
        if (jpeg_read_scanlines(cinfo, rows, want) == 0)
            return ic_error_set(IC_EFORMAT, "corrupt JPEG: decoder made no progress at row %u",
                                cinfo->output_scanline);
    }
    jpeg_finish_decompress(cinfo);
    return 0;
}

int ic_image_decode_jpeg(const void *buf, size_t len, const ic_image_decode_opts *opts,
                         ic_image *out)
{
    if (!out || (!buf && len > 0))
        return ic_error_set(IC_EINVAL, "ic_image_decode_jpeg: NULL argument");
    ic_image_decode_opts o = opts ? *opts : ic_image_decode_opts_default();
    if (o.channels != 0 && o.channels != 1 && o.channels != 3 && o.channels != 4)
        return ic_error_set(IC_EINVAL, "cannot decode to %d channels (use 0, 1, 3 or 4)",
                            o.channels);
    if (len < 3 || ic_image_sniff(buf, len) != IC_IMAGE_FORMAT_JPEG)
        return ic_error_set(IC_EFORMAT, "not a JPEG (%zu bytes, no FF D8 FF start)", len);

    jpeg_state *st = ic_calloc(1, sizeof *st);
    if (!st)
        return ic_error_set(IC_ENOMEM, "out of memory for the JPEG decoder");
    int rc = decode_inner(st, buf, len, &o);
    if (st->created)
        jpeg_destroy_decompress(&st->cinfo);
    if (rc == 0)
        rc = ic_image_orient(&st->img, st->orientation);
    if (rc == 0)
        *out = st->img;
    else
        ic_image_free(&st->img);
    ic_free(st);
    return rc;
}
