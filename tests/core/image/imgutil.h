/* Helpers for the image tests: loading files from tests/data/images and
 * crafting damaged variants (patched PNG chunks with fixed CRCs, JPEG
 * marker lookup). */
#ifndef IC_TESTS_IMAGE_IMGUTIL_H
#define IC_TESTS_IMAGE_IMGUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Reads tests/data/images/<name> into a malloc'd buffer (free()); fails the
 * test when the file is missing. */
unsigned char *iu_load(const char *name, size_t *len);

/* CRC-32 as used by PNG chunks. */
uint32_t iu_crc32(const unsigned char *p, size_t n);

void iu_put_be32(unsigned char *p, uint32_t v);

/* Offset of the first PNG chunk of type `tag` (its length field), or -1. */
long iu_png_find_chunk(const unsigned char *png, size_t len, const char *tag);

/* Recomputes the CRC of the chunk at offset `at`; returns 0 if the chunk
 * (as its length field says) does not fit in `len` bytes. */
int iu_png_fix_crc(unsigned char *png, size_t len, long at);

/* Offset of the first JPEG marker 0xFF `code` before SOS (the 0xFF byte),
 * or -1. */
long iu_jpeg_find_marker(const unsigned char *jpg, size_t len, int code);

#endif
