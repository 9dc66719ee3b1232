/* Tests of core/image/png.c: every colour type and bit depth of the files
 * made by tests/data/images/make_images.py (pixel patterns recomputed
 * here), channel conversions, encode/decode round trips, damaged and
 * oversized headers, and allocation failures inside libpng. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "base/alloc.h"
#include "base/err.h"
#include "image/png.h"
#include "imgutil.h"
#include "testutil.h"

// ---- patterns mirrored from make_images.py

static int p8(int x, int y, int k)
{
    return (x * 37 + y * 71 + k * 101 + 13) & 255;
}

static int p16(int x, int y, int k)
{
    return (x * 4099 + y * 8191 + k * 12345 + 7) & 0xFFFF;
}

static int pal_rgb(int i, int k)
{
    return k == 0 ? (i * 40) & 255 : k == 1 ? (255 - i * 30) & 255 : (i * 90) & 255;
}

static int pal_alpha(int i)
{
    static const int a[3] = {255, 0, 128};
    return i < 3 ? a[i] : 255;
}

enum { W = 7, H = 5 };

static uint8_t px8(const ic_image *img, int x, int y, int k)
{
    return ((const uint8_t *)img->data)[((size_t)y * (size_t)img->w + (size_t)x) * (size_t)img->c +
                                        (size_t)k];
}

static uint16_t px16(const ic_image *img, int x, int y, int k)
{
    return ((const uint16_t *)img->data)[((size_t)y * (size_t)img->w + (size_t)x) *
                                             (size_t)img->c +
                                         (size_t)k];
}

static int decode_file(const char *name, const ic_image_decode_opts *o, ic_image *img)
{
    size_t len;
    unsigned char *buf = iu_load(name, &len);
    int rc = ic_image_decode_png(buf, len, o, img);
    free(buf);
    return rc;
}

static void expect_shape(const ic_image *img, int c, int depth)
{
    ck_assert_int_eq(img->w, W);
    ck_assert_int_eq(img->h, H);
    ck_assert_int_eq(img->c, c);
    ck_assert_int_eq(img->depth, depth);
}

/* 16 -> 8 bits: libpng's png_set_scale_16 rounds v * 255 / 65535. */
static int scaled(int v)
{
    return (v * 255 + 32767) / 65535;
}

START_TEST(test_8bit_colour_types)
{
    ic_image img;
    ck_assert_int_eq(decode_file("gray8.png", NULL, &img), 0);
    expect_shape(&img, 1, 8);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert_int_eq(px8(&img, x, y, 0), p8(x, y, 0));
    ic_image_free(&img);

    const char *files[] = {"rgb8.png", "rgb8_adam7.png", "rgba8.png"};
    const int chans[] = {3, 3, 4};
    for (int f = 0; f < 3; f++) {
        ck_assert_int_eq(decode_file(files[f], NULL, &img), 0);
        expect_shape(&img, chans[f], 8);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int k = 0; k < chans[f]; k++)
                    ck_assert_msg(px8(&img, x, y, k) == p8(x, y, k), "%s (%d,%d,%d)", files[f], x,
                                  y, k);
        ic_image_free(&img);
    }

    /* gray+alpha comes out as RGBA. */
    ck_assert_int_eq(decode_file("ga8.png", NULL, &img), 0);
    expect_shape(&img, 4, 8);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            for (int k = 0; k < 3; k++)
                ck_assert_int_eq(px8(&img, x, y, k), p8(x, y, 0));
            ck_assert_int_eq(px8(&img, x, y, 3), p8(x, y, 1));
        }
    ic_image_free(&img);

    ck_assert_int_eq(decode_file("gray4.png", NULL, &img), 0);
    expect_shape(&img, 1, 8);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert_int_eq(px8(&img, x, y, 0), ((x + 2 * y) & 15) * 17);
    ic_image_free(&img);
}
END_TEST

START_TEST(test_16bit)
{
    ic_image img;
    ic_image_decode_opts o = ic_image_decode_opts_default();
    o.keep16 = 1;
    ck_assert_int_eq(decode_file("gray16.png", &o, &img), 0);
    expect_shape(&img, 1, 16);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert_int_eq(px16(&img, x, y, 0), p16(x, y, 0));
    ic_image_free(&img);

    ck_assert_int_eq(decode_file("rgb16.png", &o, &img), 0);
    expect_shape(&img, 3, 16);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < 3; k++)
                ck_assert_int_eq(px16(&img, x, y, k), p16(x, y, k));
    ic_image_free(&img);

    /* keep16 with 4 channels: the filler alpha is 16-bit opaque. */
    o.channels = 4;
    ck_assert_int_eq(decode_file("rgb16.png", &o, &img), 0);
    expect_shape(&img, 4, 16);
    ck_assert_int_eq(px16(&img, 3, 2, 1), p16(3, 2, 1));
    ck_assert_int_eq(px16(&img, 3, 2, 3), 0xFFFF);
    ic_image_free(&img);

    /* Default: scaled to 8 bits with rounding. */
    ck_assert_int_eq(decode_file("rgb16.png", NULL, &img), 0);
    expect_shape(&img, 3, 8);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int k = 0; k < 3; k++)
                ck_assert_int_le(abs(px8(&img, x, y, k) - scaled(p16(x, y, k))), 1);
    ic_image_free(&img);

    /* keep16 on an 8-bit file stays 8-bit. */
    o.channels = 0;
    ck_assert_int_eq(decode_file("rgb8.png", &o, &img), 0);
    expect_shape(&img, 3, 8);
    ic_image_free(&img);
}
END_TEST

START_TEST(test_palette_and_trns)
{
    ic_image img;
    const char *files[] = {"pal.png", "pal4.png"};
    for (int f = 0; f < 2; f++) {
        ck_assert_int_eq(decode_file(files[f], NULL, &img), 0);
        expect_shape(&img, 3, 8);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int k = 0; k < 3; k++)
                    ck_assert_int_eq(px8(&img, x, y, k), pal_rgb((x + y) % 6, k));
        ic_image_free(&img);
    }
    ck_assert_int_eq(decode_file("pal_trns.png", NULL, &img), 0);
    expect_shape(&img, 4, 8);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int i = (x + y) % 6;
            for (int k = 0; k < 3; k++)
                ck_assert_int_eq(px8(&img, x, y, k), pal_rgb(i, k));
            ck_assert_int_eq(px8(&img, x, y, 3), pal_alpha(i));
        }
    ic_image_free(&img);

    /* Label maps: raw indices, whatever the bit depth or tRNS. */
    ic_image_decode_opts o = ic_image_decode_opts_default();
    o.keep_values = 1;
    const char *idx_files[] = {"pal.png", "pal4.png", "pal_trns.png"};
    for (int f = 0; f < 3; f++) {
        ck_assert_int_eq(decode_file(idx_files[f], &o, &img), 0);
        expect_shape(&img, 1, 8);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                ck_assert_int_eq(px8(&img, x, y, 0), (x + y) % 6);
        ic_image_free(&img);
    }
    /* keep_values does nothing to colour files... */
    ck_assert_int_eq(decode_file("rgb8.png", &o, &img), 0);
    expect_shape(&img, 3, 8);
    ic_image_free(&img);
    /* ...and gives gray files' samples as stored: a 4-bit gray label of
     * class 3 used to come out as 51, a 16-bit one of 1000 as 4. */
    ck_assert_int_eq(decode_file("gray4.png", &o, &img), 0);
    expect_shape(&img, 1, 8);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert_int_eq(px8(&img, x, y, 0), (x + 2 * y) & 15);
    ic_image_free(&img);
    ck_assert_int_eq(decode_file("gray16.png", &o, &img), 0);
    expect_shape(&img, 1, 16);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            ck_assert_int_eq(px16(&img, x, y, 0), p16(x, y, 0));
    ic_image_free(&img);
    ck_assert_int_eq(decode_file("gray8.png", &o, &img), 0);
    expect_shape(&img, 1, 8);
    ck_assert_int_eq(px8(&img, 3, 2, 0), p8(3, 2, 0));
    ic_image_free(&img);

    /* RGB colour key: alpha 0 exactly where the pixel equals the key. */
    ck_assert_int_eq(decode_file("rgb8_trns.png", NULL, &img), 0);
    expect_shape(&img, 4, 8);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            int is_key = p8(x, y, 0) == p8(0, 0, 0) && p8(x, y, 1) == p8(0, 0, 1) &&
                         p8(x, y, 2) == p8(0, 0, 2);
            ck_assert_int_eq(px8(&img, x, y, 3), is_key ? 0 : 255);
            ck_assert_int_eq(px8(&img, x, y, 2), p8(x, y, 2));
        }
    ic_image_free(&img);
}
END_TEST

START_TEST(test_channel_conversion)
{
    ic_image img;
    ic_image_decode_opts o = ic_image_decode_opts_default();
    o.channels = 3;
    ck_assert_int_eq(decode_file("gray8.png", &o, &img), 0);
    expect_shape(&img, 3, 8);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(px8(&img, 4, 3, k), p8(4, 3, 0));
    ic_image_free(&img);

    ck_assert_int_eq(decode_file("rgba8.png", &o, &img), 0); /* alpha dropped */
    expect_shape(&img, 3, 8);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(px8(&img, 6, 4, k), p8(6, 4, k));
    ic_image_free(&img);

    ck_assert_int_eq(decode_file("pal_trns.png", &o, &img), 0);
    expect_shape(&img, 3, 8);
    ck_assert_int_eq(px8(&img, 1, 0, 1), pal_rgb(1, 1));
    ic_image_free(&img);

    o.channels = 4;
    ck_assert_int_eq(decode_file("gray8.png", &o, &img), 0);
    expect_shape(&img, 4, 8);
    ck_assert_int_eq(px8(&img, 2, 1, 0), p8(2, 1, 0));
    ck_assert_int_eq(px8(&img, 2, 1, 3), 255);
    ic_image_free(&img);

    o.channels = 1;
    ck_assert_int_eq(decode_file("ga8.png", &o, &img), 0);
    expect_shape(&img, 1, 8);
    ck_assert_int_eq(px8(&img, 5, 2, 0), p8(5, 2, 0));
    ic_image_free(&img);

    ck_assert_int_eq(decode_file("rgb8.png", &o, &img), 0);
    expect_shape(&img, 1, 8);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            /* libpng's default sRGB luma: 6968, 23434, 2366 / 32768. */
            int want = (6968 * p8(x, y, 0) + 23434 * p8(x, y, 1) + 2366 * p8(x, y, 2) + 16384) >>
                       15;
            ck_assert_int_le(abs(px8(&img, x, y, 0) - want), 1);
        }
    ic_image_free(&img);

    o.channels = 2; /* not an output layout */
    ck_assert_int_eq(decode_file("rgb8.png", &o, &img), IC_EINVAL);
}
END_TEST

static void roundtrip(const ic_image *src, int keep16)
{
    unsigned char *png = NULL;
    size_t len = 0;
    ck_assert_int_eq(ic_image_encode_png(src, NULL, &png, &len), 0);
    ck_assert_uint_gt(len, 8);
    ic_image_decode_opts o = ic_image_decode_opts_default();
    o.keep16 = keep16;
    /* gray+alpha has no 2-channel output; compare through RGBA. */
    o.channels = src->c == 2 ? 4 : src->c;
    ic_image back;
    ck_assert_int_eq(ic_image_decode(png, len, &o, &back), 0);
    ck_assert_int_eq(back.w, src->w);
    ck_assert_int_eq(back.h, src->h);
    ck_assert_int_eq(back.depth, src->depth);
    size_t n = (size_t)src->w * (size_t)src->h;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < src->c; k++) {
            int sk = src->c == 2 ? (k == 0 ? 0 : 1) : k;
            int bk = src->c == 2 ? (k == 0 ? 0 : 3) : k;
            unsigned a, b;
            if (src->depth == 8) {
                a = ((const uint8_t *)src->data)[i * (size_t)src->c + (size_t)sk];
                b = ((const uint8_t *)back.data)[i * (size_t)back.c + (size_t)bk];
            } else {
                a = ((const uint16_t *)src->data)[i * (size_t)src->c + (size_t)sk];
                b = ((const uint16_t *)back.data)[i * (size_t)back.c + (size_t)bk];
            }
            ck_assert_msg(a == b, "c=%d depth=%d pixel %zu ch %d: %u != %u", src->c, src->depth,
                          i, k, a, b);
        }
    }
    ic_image_free(&back);
    ic_free(png);
}

START_TEST(test_encode_roundtrip)
{
    uint64_t rng = 42;
    for (int depth = 8; depth <= 16; depth += 8) {
        for (int c = 1; c <= 4; c++) {
            ic_image img;
            ck_assert_int_eq(ic_image_alloc(&img, 13, 9, c, depth), 0);
            size_t n = (size_t)13 * 9 * (size_t)c;
            for (size_t i = 0; i < n; i++) {
                if (depth == 8)
                    ((uint8_t *)img.data)[i] = (uint8_t)tu_rand_int(&rng, 0, 255);
                else
                    ((uint16_t *)img.data)[i] = (uint16_t)tu_rand_int(&rng, 0, 65535);
            }
            roundtrip(&img, depth == 16);
            ic_image_free(&img);
        }
    }
}
END_TEST

START_TEST(test_encode_indexed)
{
    enum { IW = 40, IH = 30 };
    uint8_t idx[IW * IH];
    for (int i = 0; i < IW * IH; i++)
        idx[i] = (uint8_t)((i % IW) / 10 + 4 * ((i / IW) / 10)); /* 12 blocks */
    uint8_t pal[12 * 3];
    for (int i = 0; i < 12 * 3; i++)
        pal[i] = (uint8_t)(i * 7 + 1);
    unsigned char *png = NULL;
    size_t len = 0;
    ic_png_encode_opts eo = {.level = 1};
    ck_assert_int_eq(ic_image_encode_png_indexed(idx, IW, IH, pal, 12, &eo, &png, &len), 0);
    ck_assert_uint_lt(len, 300); /* blocky masks compress well */

    ic_image_decode_opts o = ic_image_decode_opts_default();
    o.keep_values = 1;
    ic_image img;
    ck_assert_int_eq(ic_image_decode(png, len, &o, &img), 0);
    ck_assert_int_eq(img.c, 1);
    ck_assert_int_eq(memcmp(img.data, idx, sizeof idx), 0);
    ic_image_free(&img);
    ck_assert_int_eq(ic_image_decode(png, len, NULL, &img), 0);
    ck_assert_int_eq(img.c, 3);
    for (int i = 0; i < IW * IH; i++)
        for (int k = 0; k < 3; k++)
            ck_assert_int_eq(((uint8_t *)img.data)[3 * i + k], pal[3 * idx[i] + k]);
    ic_image_free(&img);
    ic_free(png);

    png = NULL;
    idx[IW * 7 + 3] = 12;
    ck_assert_int_eq(ic_image_encode_png_indexed(idx, IW, IH, pal, 12, NULL, &png, &len),
                     IC_EINVAL);
    ck_assert_ptr_null(png);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "(3, 7)"));
    ck_assert_int_eq(ic_image_encode_png_indexed(idx, IW, IH, pal, 0, NULL, &png, &len),
                     IC_EINVAL);
    ck_assert_int_eq(ic_image_encode_png_indexed(idx, 0, IH, pal, 12, NULL, &png, &len),
                     IC_EINVAL);
    ic_image bad = {0};
    ck_assert_int_eq(ic_image_encode_png(&bad, NULL, &png, &len), IC_EINVAL);
}
END_TEST

START_TEST(test_truncated_and_corrupt)
{
    size_t len;
    unsigned char *buf = iu_load("rgb8_adam7.png", &len);
    long iend = iu_png_find_chunk(buf, len, "IEND");
    ck_assert_int_gt(iend, 0);
    ic_image img;
    /* Every prefix that cuts into the pixel data fails; cutting only the
     * IEND chunk loses nothing and is accepted. */
    for (size_t n = 0; n < len; n++) {
        int rc = ic_image_decode_png(buf, n, NULL, &img);
        if ((long)n < iend) {
            ck_assert_msg(rc == IC_EFORMAT, "prefix %zu: rc %d (%s)", n, rc, ic_error_message());
        } else {
            ck_assert_int_eq(rc, 0);
            ic_image_free(&img);
        }
    }
    ck_assert_int_eq(ic_image_decode_png(buf, 100, NULL, &img), IC_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ic_error_message(), "truncated"));

    /* A flipped bit in IDAT: the CRC catches it. */
    long idat = iu_png_find_chunk(buf, len, "IDAT");
    ck_assert_int_gt(idat, 0);
    unsigned char *bad = malloc(len);
    memcpy(bad, buf, len);
    bad[idat + 8 + 5] ^= 0x10;
    ck_assert_int_eq(ic_image_decode_png(bad, len, NULL, &img), IC_EFORMAT);
    /* Same with a valid CRC: zlib or its Adler-32 must catch it. */
    ck_assert(iu_png_fix_crc(bad, len, idat));
    int rc = ic_image_decode_png(bad, len, NULL, &img);
    ck_assert_msg(rc == IC_EFORMAT, "rc %d", rc);

    /* Random damage anywhere: any outcome but a crash or a leak. */
    uint64_t rng = 7;
    for (int it = 0; it < 500; it++) {
        memcpy(bad, buf, len);
        int flips = tu_rand_int(&rng, 1, 4);
        for (int f = 0; f < flips; f++)
            bad[tu_rand_int(&rng, 8, (int)len - 1)] ^= (uint8_t)tu_rand_int(&rng, 1, 255);
        if (it & 1) {
            iu_png_fix_crc(bad, len, iu_png_find_chunk(bad, len, "IDAT"));
        }
        if (ic_image_decode_png(bad, len, NULL, &img) == 0)
            ic_image_free(&img);
    }
    free(bad);
    free(buf);

    ck_assert_int_eq(ic_image_decode_png(NULL, 0, NULL, &img), IC_EFORMAT);
    ck_assert_int_eq(ic_image_decode_png("hello world", 11, NULL, &img), IC_EFORMAT);
    ck_assert_int_eq(ic_image_decode_png(NULL, 5, NULL, &img), IC_EINVAL);
}
END_TEST

/* fuzz_image found it: a 7x5 palette PNG whose next chunk, sPLT, claims
 * 0x78000012 bytes; libpng 1.6.39 allocated that before reading it. Now
 * the chunk is skipped, and skipping finds the file too short. */
START_TEST(test_huge_chunk_claim)
{
    static const unsigned char png[] = {
        0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 'I', 'H', 'D', 'R',
        0, 0, 0, 7, 0, 0, 0, 5, 8, 3, 0, 0, 0, 0xbe, 0x44, 0x06, 0xea,
        0x78, 0, 0, 0x12, 's', 'P', 'L', 'T', 'E', 0};
    ic_image img;
    /* Under ASan a 2 GB allocation would abort the test. */
    ck_assert_int_eq(ic_image_decode_png(png, sizeof png, NULL, &img), IC_EFORMAT);
    ck_assert_msg(strstr(ic_error_message(), "truncated") != NULL, "%s", ic_error_message());
}
END_TEST

// ---- decompression bombs: the decoder's work stays bounded by the file size and the pixels

static size_t put_chunk(unsigned char *dst, const char *tag, const unsigned char *data, size_t n)
{
    iu_put_be32(dst, (uint32_t)n);
    memcpy(dst + 4, tag, 4);
    if (n)
        memcpy(dst + 8, data, n);
    iu_put_be32(dst + 8 + n, iu_crc32(dst + 4, n + 4));
    return n + 12;
}

/* An 8x8 RGB PNG: signature, IHDR, `extra` (chunks, before IDAT), one
 * IDAT holding the rows deflated and then `zeros_mib` MiB of deflated
 * zeros in the same zlib stream (a valid one: its Adler-32 covers them),
 * IEND. A full flush after each MiB makes every MiB the same ~1 KB of
 * output, so a gigabyte costs nothing to build. */
static unsigned char *bomb_png(const unsigned char *extra, size_t extra_len, int zeros_mib,
                               size_t *len)
{
    unsigned char raw[8 * 25];
    for (int y = 0; y < 8; y++) {
        raw[y * 25] = 0;
        for (int i = 1; i < 25; i++)
            raw[y * 25 + i] = (unsigned char)(y * 31 + i);
    }
    size_t mib = (size_t)1 << 20;
    unsigned char *zeros = calloc(1, mib), *head = malloc(4096), *rep = malloc(8192);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    ck_assert_int_eq(deflateInit(&zs, 9), Z_OK);
    zs.next_in = raw;
    zs.avail_in = sizeof raw;
    zs.next_out = head;
    zs.avail_out = 4096;
    ck_assert_int_eq(deflate(&zs, Z_FULL_FLUSH), Z_OK);
    size_t head_len = 4096 - zs.avail_out;
    zs.next_in = zeros;
    zs.avail_in = (uInt)mib;
    zs.next_out = rep;
    zs.avail_out = 8192;
    ck_assert_int_eq(deflate(&zs, Z_FULL_FLUSH), Z_OK);
    ck_assert_uint_eq(zs.avail_in, 0);
    size_t rep_len = 8192 - zs.avail_out;
    deflateEnd(&zs);
    uLong adler = adler32(1L, raw, sizeof raw), adler_mib = adler32(1L, zeros, (uInt)mib);
    for (int i = 0; i < zeros_mib; i++)
        adler = adler32_combine(adler, adler_mib, (z_off_t)mib);
    size_t zlen = head_len + (size_t)zeros_mib * rep_len + 2 + 4;
    unsigned char *z = malloc(zlen), *q = z;
    memcpy(q, head, head_len);
    q += head_len;
    for (int i = 0; i < zeros_mib; i++, q += rep_len)
        memcpy(q, rep, rep_len);
    *q++ = 0x03; /* a last, empty block with fixed codes, then the checksum */
    *q++ = 0x00;
    iu_put_be32(q, (uint32_t)adler);
    free(zeros);
    free(head);
    free(rep);

    unsigned char *png = malloc(8 + 25 + extra_len + zlen + 12 + 12);
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char ihdr[13] = {0, 0, 0, 8, 0, 0, 0, 8, 8, 2, 0, 0, 0};
    size_t n = 0;
    memcpy(png, sig, 8);
    n += 8;
    n += put_chunk(png + n, "IHDR", ihdr, 13);
    if (extra_len)
        memcpy(png + n, extra, extra_len);
    n += extra_len;
    n += put_chunk(png + n, "IDAT", z, zlen);
    n += put_chunk(png + n, "IEND", NULL, 0);
    free(z);
    *len = n;
    return png;
}

static double cpu_s(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

/* 1000 zTXt chunks that each inflate to 8 MB (the 8 MB file of issue 17):
 * libpng inflated them all, 67 s for an 8x8 image. They are skipped now.
 * The bound is a hang check, three orders of magnitude above the time. */
START_TEST(test_ztxt_bomb)
{
    size_t plain = (size_t)8 << 20;
    unsigned char *zeros = calloc(1, plain);
    uLongf zl = compressBound(plain);
    unsigned char *one = malloc(12 + 9 + zl);
    memcpy(one + 8, "Comment\0\0", 9); /* keyword, NUL, compression method 0 */
    ck_assert_int_eq(compress2(one + 8 + 9, &zl, zeros, plain, 9), Z_OK);
    free(zeros);
    size_t clen = 9 + zl, each = clen + 12;
    unsigned char *chunks = malloc(1000 * each);
    put_chunk(chunks, "zTXt", one + 8, clen);
    for (int i = 1; i < 1000; i++)
        memcpy(chunks + (size_t)i * each, chunks, each);
    free(one);
    size_t len;
    unsigned char *png = bomb_png(chunks, 1000 * each, 0, &len);
    free(chunks);
    ck_assert_uint_gt(len, 8000000);
    ic_image img;
    double t0 = cpu_s();
    ck_assert_int_eq(ic_image_decode_png(png, len, NULL, &img), 0);
    double dt = cpu_s() - t0;
    ck_assert_msg(dt < 2.0, "decoding 1000 zTXt chunks took %.2f s of CPU", dt);
    ck_assert_int_eq(img.w, 8);
    ck_assert_int_eq(px8(&img, 2, 3, 1), (3 * 31 + 2 * 3 + 2) & 255);
    ic_image_free(&img);
    free(png);
}
END_TEST

/* Image data left over after the last row: libpng's sequential reader
 * inflated all of it in 1 KB steps (2 GB of zeros behind an 8x8 image took
 * 16 s). The rows are what counts; the rest is not inflated. */
START_TEST(test_idat_excess)
{
    size_t len;
    unsigned char *png = bomb_png(NULL, 0, 1024, &len);
    ck_assert_uint_lt(len, (size_t)2 << 20); /* 1 GiB of zeros in ~1 MB */
    ic_image img;
    double t0 = cpu_s();
    ck_assert_int_eq(ic_image_decode_png(png, len, NULL, &img), 0);
    double dt = cpu_s() - t0;
    ck_assert_msg(dt < 1.0, "an 8x8 image with 1 GiB of extra image data took %.2f s", dt);
    ck_assert_int_eq(px8(&img, 7, 7, 2), (7 * 31 + 7 * 3 + 3) & 255);
    ic_image_free(&img);
    free(png);
    /* Without the extra data: the same pixels. */
    png = bomb_png(NULL, 0, 0, &len);
    ck_assert_int_eq(ic_image_decode_png(png, len, NULL, &img), 0);
    ck_assert_int_eq(px8(&img, 2, 3, 1), (3 * 31 + 2 * 3 + 2) & 255);
    ic_image_free(&img);
    free(png);
}
END_TEST

/* Writes w and h into IHDR and fixes its CRC. */
static unsigned char *png_with_size(uint32_t w, uint32_t h, size_t *len)
{
    unsigned char *buf = iu_load("rgb8.png", len);
    long ihdr = iu_png_find_chunk(buf, *len, "IHDR");
    ck_assert_int_eq(ihdr, 8);
    iu_put_be32(buf + ihdr + 8, w);
    iu_put_be32(buf + ihdr + 12, h);
    ck_assert(iu_png_fix_crc(buf, *len, ihdr));
    return buf;
}

START_TEST(test_limits)
{
    size_t len;
    ic_image img;
    /* Under ASan an attempt to allocate 30 GB would abort the test, so
     * passing also shows that nothing image-sized was allocated. */
    unsigned char *buf = png_with_size(100000, 100000, &len);
    ck_assert_int_eq(ic_image_decode_png(buf, len, NULL, &img), IC_ELIMIT);
    ck_assert_msg(strstr(ic_error_message(), "pixels wide") != NULL, "%s", ic_error_message());
    ic_image_decode_opts o = ic_image_decode_opts_default();
    o.limits.max_w = o.limits.max_h = 200000;
    ck_assert_int_eq(ic_image_decode_png(buf, len, &o, &img), IC_ELIMIT);
    ck_assert_str_eq(ic_error_message(),
                     "PNG is 100000x100000 = 10000000000 pixels, limit 40000000");
    free(buf);

    buf = png_with_size(20000, 1, &len);
    ck_assert_int_eq(ic_image_decode_png(buf, len, NULL, &img), IC_ELIMIT);
    ck_assert_str_eq(ic_error_message(), "PNG is 20000 pixels wide, limit 16384");
    free(buf);

    buf = png_with_size(0, 0, &len);
    ck_assert_int_eq(ic_image_decode_png(buf, len, NULL, &img), IC_EFORMAT);
    free(buf);
    buf = png_with_size(0x80000000u, 1, &len); /* over PNG's 2^31 - 1 */
    ck_assert_int_eq(ic_image_decode_png(buf, len, NULL, &img), IC_EFORMAT);
    free(buf);

    buf = iu_load("rgb8.png", &len);
    o = ic_image_decode_opts_default();
    o.limits.max_pixels = W * H - 1;
    ck_assert_int_eq(ic_image_decode_png(buf, len, &o, &img), IC_ELIMIT);
    o.limits.max_pixels = W * H;
    ck_assert_int_eq(ic_image_decode_png(buf, len, &o, &img), 0);
    ic_image_free(&img);
    free(buf);
}
END_TEST

START_TEST(test_alloc_failures)
{
    const char *files[] = {"rgb8_adam7.png", "pal_trns.png", "gray16.png"};
    for (int f = 0; f < 3; f++) {
        size_t len;
        unsigned char *buf = iu_load(files[f], &len);
        int ok = 0;
        for (long n = 0; n < 400 && !ok; n++) {
            ic_image img;
            ic_alloc_fail_after(n);
            int rc = ic_image_decode_png(buf, len, NULL, &img);
            ic_alloc_fail_reset();
            if (rc == 0) {
                ok = 1;
                ic_image_free(&img);
            } else {
                ck_assert_msg(rc == IC_ENOMEM, "%s, fail after %ld: rc %d (%s)", files[f], n, rc,
                              ic_error_message());
            }
        }
        ck_assert_msg(ok, "%s never decoded", files[f]);
        free(buf);
    }

    ic_image img;
    ck_assert_int_eq(ic_image_alloc(&img, 64, 48, 3, 8), 0);
    memset(img.data, 77, 64 * 48 * 3);
    int ok = 0;
    for (long n = 0; n < 400 && !ok; n++) {
        unsigned char *png = NULL;
        size_t len = 0;
        ic_alloc_fail_after(n);
        int rc = ic_image_encode_png(&img, NULL, &png, &len);
        ic_alloc_fail_reset();
        if (rc == 0) {
            ok = 1;
            ic_free(png);
        } else {
            ck_assert_msg(rc == IC_ENOMEM, "encode, fail after %ld: rc %d", n, rc);
            ck_assert_ptr_null(png);
        }
    }
    ck_assert(ok);
    ic_image_free(&img);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("image/png");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_8bit_colour_types);
    tcase_add_test(tc, test_16bit);
    tcase_add_test(tc, test_palette_and_trns);
    tcase_add_test(tc, test_channel_conversion);
    tcase_add_test(tc, test_encode_roundtrip);
    tcase_add_test(tc, test_encode_indexed);
    tcase_add_test(tc, test_truncated_and_corrupt);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_huge_chunk_claim);
    tcase_add_test(tc, test_ztxt_bomb);
    tcase_add_test(tc, test_idat_excess);
    tcase_add_test(tc, test_alloc_failures);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
