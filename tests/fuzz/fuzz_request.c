/* libFuzzer target: srv_request_parse(), the request parser of instcald
 * (server/request.h), called directly: no sockets, no libmicrohttpd.
 *
 * Input: byte 0 says which uploads are present (bit 0 image, bit 1 label,
 * bit 2 label_segments); the rest is lines. Line 1 is the Content-Type
 * header, line 2 the image part's Content-Type (an empty line: none); each
 * further line is one key=value pair, of the form when it starts with 'F',
 * else of the query (its first byte is dropped either way).
 * Checked: every outcome is an error with a 400 status and a message, or a
 * request whose options are all in range; parsing twice gives the same. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAIRS 64

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_request: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned uploads = data[0];
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    char *lines[2 + MAX_PAIRS] = {0};
    int n = 0;
    for (char *p = text; p && n < 2 + MAX_PAIRS;) {
        lines[n++] = p;
        p = strchr(p, '\n');
        if (p)
            *p++ = '\0';
    }
    srv_kv form[MAX_PAIRS], query[MAX_PAIRS];
    size_t nf = 0, nq = 0;
    for (int i = 2; i < n; i++) {
        char *kv = lines[i];
        if (!kv[0])
            continue;
        int is_form = kv[0] == 'F';
        char *key = kv + 1, *eq = strchr(key, '=');
        const char *value = "";
        if (eq) {
            *eq = '\0';
            value = eq + 1;
        }
        if (is_form)
            form[nf++] = (srv_kv){key, value};
        else
            query[nq++] = (srv_kv){key, value};
    }
    srv_request_args a = {
        .form = form,
        .n_form = nf,
        .query = query,
        .n_query = nq,
        .content_type = n > 0 && lines[0][0] ? lines[0] : NULL,
        .image_part_type = n > 1 && lines[1][0] ? lines[1] : NULL,
    };
    srv_config cfg;
    srv_config_defaults(&cfg);
    srv_request r;
    srv_request_init(&r, 0);
    if (uploads & 1)
        srv_buf_append(&r.image, "img", 3);
    if (uploads & 2)
        srv_buf_append(&r.label, "lab", 3);
    if (uploads & 4)
        srv_buf_append(&r.label_segments, "[]", 2);

    srv_body_kind kind = srv_request_body_kind(a.content_type);
    check(kind == SRV_BODY_UNSUPPORTED || kind == SRV_BODY_IMAGE || kind == SRV_BODY_MULTIPART,
          "body kind out of range");
    srv_err e = srv_request_parse(&r, &a, &cfg);
    if (e != SRV_ERR_NONE) {
        check(e > SRV_ERR_NONE && e < SRV_ERR_COUNT, "error out of range");
        check(srv_err_status(e) == 400, "a parse error that is no 400");
        check(ic_error_message()[0] != '\0', "an error without a message");
    } else {
        const ic_segment_opts *o = &r.opts;
        check((unsigned)o->calib.mode < IC_CALIB_COUNT, "mode out of range");
        check(!ic_calib_mode_needs_m(o->calib.mode) || r.has_m, "manual without m");
        check(!r.has_m || (isfinite(o->calib.m) && o->calib.m >= 0 && o->calib.m <= 1),
              "m outside [0, 1]");
        check(r.has_m || o->calib.m == 0, "m set but not given");
        check((o->outputs & ~(unsigned)IC_OUT_ALL) == 0, "outputs outside the table");
        check(!strcmp(r.image_type, "") || !strcmp(r.image_type, "image/jpeg") ||
                  !strcmp(r.image_type, "image/png"),
              "image type");
        check(r.image.len > 0, "accepted without an image");
        check(!r.label_segments.len || r.label.len, "label_segments without label");
        check(o->limits.max_pixels == cfg.max_pixels, "max_pixels not the server's");
        check(o->repeat == 0, "options the parser does not own");
        check(o->size == 0 || (o->size >= cfg.min_request_size && o->size <= cfg.max_request_size),
              "size outside the config's bounds");
        ic_segment_opts first = *o;
        int has_m = r.has_m;
        char type[sizeof r.image_type];
        memcpy(type, r.image_type, sizeof type);
        check(srv_request_parse(&r, &a, &cfg) == SRV_ERR_NONE, "second parse fails");
        check(first.calib.mode == o->calib.mode && first.calib.m == o->calib.m &&
                  first.outputs == o->outputs && first.size == o->size && has_m == r.has_m &&
                  first.limits.max_pixels == o->limits.max_pixels && !strcmp(type, r.image_type),
              "second parse differs");
    }
    srv_request_free(&r);
    free(text);
    return 0;
}
