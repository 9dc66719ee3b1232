/* Path sanitisation and content types for static files (see static_files.h). */
#include "static_files.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/err.h"

/* Textual checks on the decoded path: every segment must be a plain name. */
static int path_is_clean(const char *p)
{
    if (p[0] != '/')
        return 0;
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        if (*c < 0x20 || *c == 0x7f || *c == '\\' || *c == '%')
            return 0;
    const char *seg = p + 1;
    while (*seg) {
        size_t len = strcspn(seg, "/");
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return 0;
        seg += len;
        if (*seg == '/')
            seg++;
    }
    return 1;
}

int srv_static_resolve(const char *root_real, const char *url_path, char *out, size_t n)
{
    if (!path_is_clean(url_path))
        return ic_error_set(IC_EINVAL, "refused path");
    char joined[PATH_MAX];
    size_t ul = strlen(url_path);
    const char *suffix = url_path[ul - 1] == '/' ? "index.html" : "";
    int len = snprintf(joined, sizeof joined, "%s%s%s", root_real, url_path, suffix);
    if (len < 0 || (size_t)len >= sizeof joined)
        return ic_error_set(IC_EINVAL, "path too long");
    char real[PATH_MAX];
    if (!realpath(joined, real))
        return ic_error_set(IC_ENOTFOUND, "no such file");
    size_t rl = strlen(root_real);
    if (strncmp(real, root_real, rl) != 0 || real[rl] != '/')
        return ic_error_set(IC_ENOTFOUND, "outside the static root");
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode))
        return ic_error_set(IC_ENOTFOUND, "not a regular file");
    if (strlen(real) >= n)
        return ic_error_set(IC_EINVAL, "path too long");
    memcpy(out, real, strlen(real) + 1);
    return 0;
}

const char *srv_static_content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"svg", "image/svg+xml"},
        {"ico", "image/x-icon"},
        {"txt", "text/plain; charset=utf-8"},
        {"webp", "image/webp"},
        {"wasm", "application/wasm"},
    };
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash : path, '.');
    if (dot)
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}
