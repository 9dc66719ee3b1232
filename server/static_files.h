/* Serving the demo page: URL-path sanitisation and content types.
 *
 * The URL path libmicrohttpd hands us is already percent-decoded once, so
 * anything still containing '%' is refused rather than decoded again
 * (double decoding is the classic way to smuggle "%2e%2e" past a check).
 * After the textual checks the path is resolved with realpath() and must
 * still lie inside the root, which also defeats symlinks pointing out. */
#ifndef SRV_STATIC_FILES_H
#define SRV_STATIC_FILES_H

#include <stddef.h>

/* Resolves url_path (starting with '/'; "/" means "/index.html") against
 * root_real (a realpath()-canonical directory) into out (size n).
 * Returns 0 when out names a regular file inside the root; IC_EINVAL
 * (answer 403) for a path that tries to escape or is malformed (a "." or
 * ".." segment, a backslash, '%', or a control character); IC_ENOTFOUND
 * (answer 404) for a missing file, a directory, or a symlink that resolves
 * outside the root. */
int srv_static_resolve(const char *root_real, const char *url_path, char *out, size_t n);

/* Content-Type for a file name by extension (html, css, js, png, jpg, svg,
 * json, ico, txt, ...); "application/octet-stream" if unknown. */
const char *srv_static_content_type(const char *path);

#endif
