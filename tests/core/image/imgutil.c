/* Helpers for the image tests (see imgutil.h). */
#include "imgutil.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

unsigned char *iu_load(const char *name, size_t *len)
{
    char rel[256];
    snprintf(rel, sizeof rel, "data/images/%s", name);
    FILE *f = fopen(tu_path(rel), "rb");
    ck_assert_msg(f != NULL, "cannot open %s", rel);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    ck_assert_int_gt(n, 0);
    unsigned char *buf = malloc((size_t)n);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

uint32_t iu_crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

void iu_put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

long iu_png_find_chunk(const unsigned char *png, size_t len, const char *tag)
{
    size_t at = 8;
    while (at + 12 <= len) {
        uint32_t n = get_be32(png + at);
        if (memcmp(png + at + 4, tag, 4) == 0)
            return (long)at;
        at += 12 + (size_t)n;
    }
    return -1;
}

int iu_png_fix_crc(unsigned char *png, size_t len, long at)
{
    if (at < 0 || (size_t)at + 12 > len)
        return 0;
    uint32_t n = get_be32(png + at);
    if (n > len - (size_t)at - 12)
        return 0;
    iu_put_be32(png + at + 8 + n, iu_crc32(png + at + 4, 4 + (size_t)n));
    return 1;
}

long iu_jpeg_find_marker(const unsigned char *jpg, size_t len, int code)
{
    size_t at = 2;
    while (at + 4 <= len && jpg[at] == 0xFF) {
        int m = jpg[at + 1];
        if (m == code)
            return (long)at;
        if (m == 0xDA)
            break;
        at += 2 + ((size_t)jpg[at + 2] << 8 | jpg[at + 3]);
    }
    return -1;
}
