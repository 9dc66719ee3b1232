/* Tests of core/image/jpeg.c: baseline, progressive, arithmetic-coded and
 * grayscale files from make_images.py (pixels within a JPEG tolerance), every EXIF
 * orientation in both byte orders (spliced into a file here), malformed
 * EXIF, CMYK and 12-bit rejection, patched frame sizes, truncation,
 * random damage and allocation failures. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/jpeg.h"
#include "imgutil.h"
#include "testutil.h"

// ---- quad.jpg: 32x16, quadrants red | green over blue | yellow

enum { QW = 32, QH = 16 };
enum { RED, GREEN, BLUE, YELLOW };
static const int colours[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 0}};

static const uint8_t *px(const ic_image *img, int x, int y)
{
    return (const uint8_t *)img->data + ((size_t)y * (size_t)img->w + (size_t)x) * (size_t)img->c;
}

static void expect_colour(const ic_image *img, int x, int y, int colour, const char *what)
{
    const uint8_t *p = px(img, x, y);
    for (int k = 0; k < 3; k++)
        ck_assert_msg(abs(p[k] - colours[colour][k]) <= 40, "%s: (%d,%d) ch %d = %d, want %d",
                      what, x, y, k, p[k], colours[colour][k]);
}

/* Checks the colour one pixel in from each corner: tl, tr, bl, br. */
static void expect_corners(const ic_image *img, const int c[4], const char *what)
{
    expect_colour(img, 1, 1, c[0], what);
    expect_colour(img, img->w - 2, 1, c[1], what);
    expect_colour(img, 1, img->h - 2, c[2], what);
    expect_colour(img, img->w - 2, img->h - 2, c[3], what);
}

static int decode_file(const char *name, const ic_image_decode_opts *o, ic_image *img)
{
    size_t len;
    unsigned char *buf = iu_load(name, &len);
    int rc = ic_image_decode_jpeg(buf, len, o, img);
    free(buf);
    return rc;
}

START_TEST(test_baseline_and_progressive)
{
    static const int upright[4] = {RED, GREEN, BLUE, YELLOW};
    const char *files[] = {"quad.jpg", "quad_prog.jpg", "quad_arith.jpg"};
    for (int f = 0; f < 3; f++) {
        ic_image img;
        ck_assert_int_eq(decode_file(files[f], NULL, &img), 0);
        ck_assert_int_eq(img.w, QW);
        ck_assert_int_eq(img.h, QH);
        ck_assert_int_eq(img.c, 3);
        ck_assert_int_eq(img.depth, 8);
        expect_corners(&img, upright, files[f]);
        ic_image_free(&img);

        ic_image_decode_opts o = ic_image_decode_opts_default();
        o.channels = 4;
        ck_assert_int_eq(decode_file(files[f], &o, &img), 0);
        ck_assert_int_eq(img.c, 4);
        expect_corners(&img, upright, files[f]);
        ck_assert_int_eq(px(&img, 5, 5)[3], 255);
        ic_image_free(&img);

        o.channels = 1; /* luma of red is about 76 */
        ck_assert_int_eq(decode_file(files[f], &o, &img), 0);
        ck_assert_int_eq(img.c, 1);
        ck_assert_int_le(abs(px(&img, 1, 1)[0] - 76), 12);
        ic_image_free(&img);
    }
}
END_TEST

START_TEST(test_pixels_within_tolerance)
{
    ic_image img;
    ck_assert_int_eq(decode_file("grad.jpg", NULL, &img), 0);
    ck_assert_int_eq(img.w, 32);
    ck_assert_int_eq(img.h, 24);
    double sum = 0;
    int worst = 0;
    for (int y = 0; y < 24; y++)
        for (int x = 0; x < 32; x++) {
            const int want[3] = {8 * x, 10 * y, 128};
            for (int k = 0; k < 3; k++) {
                int d = abs(px(&img, x, y)[k] - want[k]);
                sum += d;
                worst = d > worst ? d : worst;
            }
        }
    ck_assert_double_lt(sum / (32 * 24 * 3), 3.0);
    ck_assert_int_lt(worst, 24);
    ic_image_free(&img);

    ck_assert_int_eq(decode_file("gray.jpg", NULL, &img), 0);
    ck_assert_int_eq(img.c, 1);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            ck_assert_int_le(abs(px(&img, x, y)[0] - (8 * x + 4 * y)), 6);
    ic_image_free(&img);

    ic_image_decode_opts o = ic_image_decode_opts_default();
    o.channels = 3;
    ck_assert_int_eq(decode_file("gray.jpg", &o, &img), 0);
    ck_assert_int_eq(img.c, 3);
    const uint8_t *p = px(&img, 9, 4);
    ck_assert(p[0] == p[1] && p[1] == p[2]);
    ck_assert_int_le(abs(p[0] - (8 * 9 + 4 * 4)), 6);
    ic_image_free(&img);
}
END_TEST

// ---- EXIF orientation

/* Expected corners (tl, tr, bl, br) after each orientation, worked out by
 * hand from the TIFF definitions, not from the code under test. */
static const int oriented[9][4] = {
    {0},
    {RED, GREEN, BLUE, YELLOW}, /* 1 upright */
    {GREEN, RED, YELLOW, BLUE}, /* 2 mirrored left-right */
    {YELLOW, BLUE, GREEN, RED}, /* 3 rotated 180 */
    {BLUE, YELLOW, RED, GREEN}, /* 4 mirrored top-bottom */
    {RED, BLUE, GREEN, YELLOW}, /* 5 transposed */
    {BLUE, RED, YELLOW, GREEN}, /* 6 rotated 90 clockwise */
    {YELLOW, GREEN, BLUE, RED}, /* 7 transversed */
    {GREEN, YELLOW, RED, BLUE}, /* 8 rotated 90 counter-clockwise */
};

static void put16(unsigned char *p, unsigned v, int be)
{
    p[be ? 0 : 1] = (unsigned char)(v >> 8);
    p[be ? 1 : 0] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v, int be)
{
    put16(p + (be ? 0 : 2), v >> 16, be);
    put16(p + (be ? 2 : 0), v & 0xFFFF, be);
}

/* APP1 payload "Exif\0\0" + TIFF header + IFD0 with one Orientation entry:
 * TIFF bytes 0-1 order, 2-3 42, 4-7 IFD offset 8, 8-9 one entry, 10-21 the
 * entry (tag 0x0112, type SHORT, count 1, value), 22-25 next IFD 0. */
static size_t make_exif(unsigned char *p, int orientation, int be)
{
    unsigned char *t = p + 6;
    memcpy(p, "Exif\0\0", 6);
    memset(t, 0, 26);
    t[0] = t[1] = be ? 'M' : 'I';
    put16(t + 2, 42, be);
    put32(t + 4, 8, be);
    put16(t + 8, 1, be);
    put16(t + 10, 0x0112, be);
    put16(t + 12, 3, be);
    put32(t + 14, 1, be);
    put16(t + 18, (unsigned)orientation, be);
    return 6 + 26;
}

/* quad.jpg with an APP1 segment inserted right after SOI. */
static unsigned char *jpeg_with_app1(const unsigned char *payload, size_t plen, size_t *len)
{
    size_t blen;
    unsigned char *base = iu_load("quad.jpg", &blen);
    *len = blen + 4 + plen;
    unsigned char *out = malloc(*len);
    memcpy(out, base, 2);
    out[2] = 0xFF;
    out[3] = 0xE1;
    out[4] = (unsigned char)((plen + 2) >> 8);
    out[5] = (unsigned char)(plen + 2);
    memcpy(out + 6, payload, plen);
    memcpy(out + 6 + plen, base + 2, blen - 2);
    free(base);
    return out;
}

START_TEST(test_exif_orientations)
{
    for (int be = 0; be <= 1; be++) {
        for (int o = 1; o <= 8; o++) {
            unsigned char payload[64];
            size_t plen = make_exif(payload, o, be);
            ck_assert_int_eq(ic_image_exif_orientation(payload, plen), o);
            size_t len;
            unsigned char *jpg = jpeg_with_app1(payload, plen, &len);
            ic_image img;
            ck_assert_int_eq(ic_image_decode_jpeg(jpg, len, NULL, &img), 0);
            char what[32];
            snprintf(what, sizeof what, "orientation %d %s", o, be ? "MM" : "II");
            ck_assert_int_eq(img.w, o >= 5 ? QH : QW);
            ck_assert_int_eq(img.h, o >= 5 ? QW : QH);
            expect_corners(&img, oriented[o], what);
            ic_image_free(&img);

            ic_image_decode_opts opts = ic_image_decode_opts_default();
            opts.ignore_exif = 1;
            ck_assert_int_eq(ic_image_decode_jpeg(jpg, len, &opts, &img), 0);
            ck_assert_int_eq(img.w, QW);
            expect_corners(&img, oriented[1], "ignored");
            ic_image_free(&img);
            free(jpg);
        }
    }
    /* A file written by PIL (an independent EXIF writer). */
    ic_image img;
    ck_assert_int_eq(decode_file("quad_exif6.jpg", NULL, &img), 0);
    ck_assert_int_eq(img.w, QH);
    ck_assert_int_eq(img.h, QW);
    expect_corners(&img, oriented[6], "PIL exif 6");
    ic_image_free(&img);
}
END_TEST

START_TEST(test_exif_malformed)
{
    unsigned char p[64];
    size_t n = make_exif(p, 6, 0);
    ck_assert_int_eq(ic_image_exif_orientation(p, n), 6);
    /* Every truncation, including inside the entry, gives upright. */
    for (size_t k = 0; k < n; k++)
        ck_assert_int_eq(ic_image_exif_orientation(p, k), k >= 6 + 22 ? 6 : 1);
    unsigned char q[64];
    memcpy(q, p, n);
    q[6 + 18] = 9; /* out of range */
    ck_assert_int_eq(ic_image_exif_orientation(q, n), 1);
    memcpy(q, p, n);
    q[6 + 4] = 0xF0; /* IFD offset far past the end */
    q[6 + 7] = 0xFF;
    ck_assert_int_eq(ic_image_exif_orientation(q, n), 1);
    memcpy(q, p, n);
    q[6 + 8] = 0xFF; /* 65535 entries claimed: only the real one is read */
    q[6 + 9] = 0xFF;
    ck_assert_int_eq(ic_image_exif_orientation(q, n), 6);
    memcpy(q, p, n);
    q[6 + 12] = 7; /* wrong type */
    ck_assert_int_eq(ic_image_exif_orientation(q, n), 1);
    memcpy(q, p, n);
    q[6] = 'X'; /* bad byte order mark */
    ck_assert_int_eq(ic_image_exif_orientation(q, n), 1);
    ck_assert_int_eq(ic_image_exif_orientation(NULL, 10), 1);
    ck_assert_int_eq(ic_image_exif_orientation("XMP stuff here, not exif", 24), 1);

    /* Random payloads: any answer in 1..8, no out-of-bounds read (ASan). */
    uint64_t rng = 99;
    for (int it = 0; it < 3000; it++) {
        memcpy(q, p, n);
        int flips = tu_rand_int(&rng, 1, 6);
        for (int f = 0; f < flips; f++)
            q[tu_rand_int(&rng, 6, (int)n - 1)] = (unsigned char)tu_rand_u64(&rng);
        size_t len = (size_t)tu_rand_int(&rng, 0, (int)n);
        unsigned char *heap = malloc(len ? len : 1); /* exact size for ASan */
        memcpy(heap, q, len);
        int o = ic_image_exif_orientation(heap, len);
        ck_assert(o >= 1 && o <= 8);
        free(heap);
    }

    /* A file with a broken EXIF segment still decodes, upright. */
    q[6 + 4] = 0xF0;
    size_t len;
    unsigned char *jpg = jpeg_with_app1(q, n, &len);
    ic_image img;
    ck_assert_int_eq(ic_image_decode_jpeg(jpg, len, NULL, &img), 0);
    ck_assert_int_eq(img.w, QW);
    ic_image_free(&img);
    free(jpg);
}
END_TEST

// ---- rejected files

START_TEST(test_unsupported)
{
    ic_image img;
    ck_assert_int_eq(decode_file("cmyk.jpg", NULL, &img), IC_EUNSUPPORTED);
    ck_assert_msg(strstr(ic_error_message(), "CMYK") != NULL, "%s", ic_error_message());
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "only RGB, YCbCr and grayscale"));

    size_t len;
    unsigned char *buf = iu_load("quad.jpg", &len);
    long sof = iu_jpeg_find_marker(buf, len, 0xC0);
    ck_assert_int_gt(sof, 0);
    buf[sof + 4] = 12; /* sample precision */
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, NULL, &img), IC_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "12"));
    buf[sof + 4] = 8;
    buf[sof + 1] = 0xC3; /* lossless */
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, NULL, &img), IC_EUNSUPPORTED);
    free(buf);
}
END_TEST

static unsigned char *jpeg_with_size(int w, int h, size_t *len)
{
    unsigned char *buf = iu_load("quad.jpg", len);
    long sof = iu_jpeg_find_marker(buf, *len, 0xC0);
    ck_assert_int_gt(sof, 0);
    buf[sof + 5] = (unsigned char)(h >> 8);
    buf[sof + 6] = (unsigned char)h;
    buf[sof + 7] = (unsigned char)(w >> 8);
    buf[sof + 8] = (unsigned char)w;
    return buf;
}

START_TEST(test_limits)
{
    ic_image img;
    size_t len;
    /* 16 bits per side: 60000 x 60000 is the biggest libjpeg accepts. */
    unsigned char *buf = jpeg_with_size(60000, 60000, &len);
    ic_image_decode_opts o = ic_image_decode_opts_default();
    o.limits.max_w = o.limits.max_h = 65535;
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, &o, &img), IC_ELIMIT);
    ck_assert_str_eq(ic_error_message(),
                     "JPEG is 60000x60000 = 3600000000 pixels, limit 40000000");
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, NULL, &img), IC_ELIMIT);
    free(buf);

    buf = jpeg_with_size(65535, 65535, &len); /* beyond libjpeg's own maximum */
    int rc = ic_image_decode_jpeg(buf, len, NULL, &img);
    ck_assert_int_eq(rc, IC_ELIMIT);
    free(buf);

    buf = jpeg_with_size(0, 0, &len);
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, NULL, &img), IC_EFORMAT);
    free(buf);
    buf = jpeg_with_size(32, 0, &len);
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, NULL, &img), IC_EFORMAT);
    free(buf);

    buf = iu_load("quad.jpg", &len);
    o = ic_image_decode_opts_default();
    o.limits.max_h = 15;
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, &o, &img), IC_ELIMIT);
    ck_assert_str_eq(ic_error_message(), "JPEG is 16 pixels high, limit 15");
    free(buf);
}
END_TEST

/* A 64x48 progressive JPEG whose last scan (coefficient 63 of the luma,
 * first pass) is repeated until the file has n_scans scans: libjpeg
 * accepts the repeats (a first pass at full precision may be sent again),
 * and each costs a pass over the coefficients. */
static unsigned char *jpeg_with_scans(int n_scans, size_t *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long out_len = 0;
    jpeg_mem_dest(&c, &out, &out_len);
    c.image_width = 64;
    c.image_height = 48;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    static const jpeg_scan_info script[5] = {{3, {0, 1, 2}, 0, 0, 0, 0},
                                             {1, {0}, 1, 62, 0, 0},
                                             {1, {1}, 1, 63, 0, 0},
                                             {1, {2}, 1, 63, 0, 0},
                                             {1, {0}, 63, 63, 0, 0}};
    c.scan_info = script;
    c.num_scans = 5;
    jpeg_start_compress(&c, TRUE);
    unsigned char row[64 * 3];
    for (int y = 0; y < 48; y++) {
        for (int i = 0; i < 64 * 3; i++)
            row[i] = (unsigned char)(i * 5 + y * 3);
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    long last = -1; /* the last SOS marker */
    for (long i = 0; i + 1 < (long)out_len; i++)
        if (out[i] == 0xFF && out[i + 1] == 0xDA)
            last = i;
    ck_assert_int_gt(last, 0);
    size_t eoi = out_len - 2, scan = eoi - (size_t)last;
    *len = out_len + (size_t)(n_scans - 5) * scan;
    unsigned char *buf = malloc(*len), *q = buf;
    memcpy(q, out, eoi);
    q += eoi;
    for (int k = 5; k < n_scans; k++, q += scan)
        memcpy(q, out + last, scan);
    memcpy(q, out + eoi, 2);
    free(out);
    return buf;
}

/* 2000 scans of a 4000x4000 image took 17 s: the scan count is capped. */
START_TEST(test_scan_limit)
{
    size_t len;
    ic_image img;
    unsigned char *buf = jpeg_with_scans(IC_IMAGE_MAX_SCANS_DEFAULT, &len);
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, NULL, &img), 0);
    ck_assert_int_eq(img.w, 64);
    ic_image_free(&img);
    free(buf);
    buf = jpeg_with_scans(IC_IMAGE_MAX_SCANS_DEFAULT + 1, &len);
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, NULL, &img), IC_ELIMIT);
    ck_assert_str_eq(ic_error_message(), "JPEG has more than 100 scans, limit 100");
    free(buf);
    buf = jpeg_with_scans(2000, &len);
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, NULL, &img), IC_ELIMIT);
    /* The limit is a field of the limits; the five scans of the script pass. */
    ic_image_decode_opts o = ic_image_decode_opts_default();
    o.limits.max_scans = 5;
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, &o, &img), IC_ELIMIT);
    ck_assert_str_eq(ic_error_message(), "JPEG has more than 5 scans, limit 5");
    free(buf);
    buf = jpeg_with_scans(5, &len);
    ck_assert_int_eq(ic_image_decode_jpeg(buf, len, &o, &img), 0);
    ic_image_free(&img);
    free(buf);
}
END_TEST

START_TEST(test_truncated_and_corrupt)
{
    const char *files[] = {"quad.jpg", "quad_prog.jpg", "gray.jpg", "quad_arith.jpg"};
    for (int f = 0; f < 4; f++) {
        size_t len;
        unsigned char *buf = iu_load(files[f], &len);
        ic_image img;
        /* Exact-size copies so that ASan sees any read past the end. */
        for (size_t n = 0; n < len; n++) {
            unsigned char *cut = malloc(n ? n : 1);
            memcpy(cut, buf, n);
            int rc = ic_image_decode_jpeg(cut, n, NULL, &img);
            ck_assert_msg(rc == IC_EFORMAT, "%s cut at %zu of %zu: rc %d (%s)", files[f], n, len,
                          rc, ic_error_message());
            free(cut);
        }
        ck_assert_int_eq(ic_image_decode_jpeg(buf, len, NULL, &img), 0);
        ic_image_free(&img);

        uint64_t rng = 1234 + (uint64_t)f;
        unsigned char *bad = malloc(len);
        for (int it = 0; it < 300; it++) {
            memcpy(bad, buf, len);
            int flips = tu_rand_int(&rng, 1, 4);
            for (int k = 0; k < flips; k++)
                bad[tu_rand_int(&rng, 3, (int)len - 1)] = (unsigned char)tu_rand_u64(&rng);
            if (ic_image_decode_jpeg(bad, len, NULL, &img) == 0)
                ic_image_free(&img);
        }
        free(bad);
        free(buf);
    }
    ic_image img;
    static const unsigned char junk[] = {0xFF, 0xD8, 0xFF, 0x00, 0x12, 0x34, 0x56, 0x78};
    ck_assert_int_eq(ic_image_decode_jpeg(junk, sizeof junk, NULL, &img), IC_EFORMAT);
    ck_assert_int_eq(ic_image_decode_jpeg(NULL, 0, NULL, &img), IC_EFORMAT);
    ck_assert_int_eq(ic_image_decode_jpeg("GIF89a", 6, NULL, &img), IC_EFORMAT);
}
END_TEST

START_TEST(test_alloc_failures)
{
    const char *files[] = {"quad_exif6.jpg", "quad_prog.jpg"};
    for (int f = 0; f < 2; f++) {
        size_t len;
        unsigned char *buf = iu_load(files[f], &len);
        int ok = 0;
        for (long n = 0; n < 50 && !ok; n++) {
            ic_image img;
            ic_alloc_fail_after(n);
            int rc = ic_image_decode_jpeg(buf, len, NULL, &img);
            ic_alloc_fail_reset();
            if (rc == 0) {
                ok = 1;
                ic_image_free(&img);
            } else {
                ck_assert_msg(rc == IC_ENOMEM, "fail after %ld: rc %d", n, rc);
            }
        }
        ck_assert(ok);
        free(buf);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image/jpeg");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_baseline_and_progressive);
    tcase_add_test(tc, test_pixels_within_tolerance);
    tcase_add_test(tc, test_exif_orientations);
    tcase_add_test(tc, test_exif_malformed);
    tcase_add_test(tc, test_unsupported);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_scan_limit);
    tcase_add_test(tc, test_truncated_and_corrupt);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
