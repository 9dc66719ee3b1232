/* libFuzzer target: srv_oip_parse() and srv_oip_encode(), the Open
 * Inference Protocol codec of instcald (server/oip.h), called directly.
 *
 * Input: byte 0 bit 0 says whether an Inference-Header-Content-Length is
 * sent, bytes 1-2 its value (little-endian; bit 1 of byte 0 sends it with
 * a trailing 'x', not a number); the rest is the body.
 * Checked: every outcome is an error with a 4xx status and a message and
 * no OIP request left behind, or a request with an image, outputs within
 * the table, binary outputs among the requested ones and a valid mode;
 * then the response for it is encoded and its JSON header must parse, with
 * the binary section exactly as long as the header says. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "oip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_oip: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    char header_len[16];
    snprintf(header_len, sizeof header_len, "%u%s", (unsigned)data[1] | (unsigned)data[2] << 8,
             data[0] & 2 ? "x" : "");
    srv_config cfg;
    srv_config_defaults(&cfg);
    srv_request r;
    srv_request_init(&r, 1 << 16);
    srv_err e = srv_oip_parse(&r, (const char *)data + 3, size - 3, data[0] & 1 ? header_len : NULL,
                              &cfg);
    if (e != SRV_ERR_NONE) {
        check(e > SRV_ERR_NONE && e < SRV_ERR_COUNT, "error out of range");
        int st = srv_err_status(e);
        check(st == 400 || st == 413, "a parse error that is no 400 or 413");
        check(ic_error_message()[0] != '\0', "an error without a message");
        check(r.oip.outputs == 0 && r.oip.binary == 0, "a failed parse left an OIP request");
        srv_request_free(&r);
        return 0;
    }
    unsigned all = (1u << SRV_OIP_N_OUTPUTS) - 1;
    check(r.image.len > 0, "accepted without an image");
    check(r.oip.outputs && (r.oip.outputs & ~all) == 0, "outputs outside the table");
    check((r.oip.binary & ~r.oip.outputs) == 0, "a binary output that was not requested");
    check((unsigned)r.opts.calib.mode < IC_CALIB_COUNT, "mode out of range");
    check(!ic_calib_mode_needs_m(r.opts.calib.mode) || r.has_m, "manual without m");
    check(r.opts.outputs == 0, "PNG outputs for an OIP request");
    check(r.opts.size == 0 || (r.opts.size >= cfg.min_request_size && r.opts.size <= cfg.max_request_size),
          "size outside the config's bounds");
    check(strlen(r.oip.id) <= SRV_OIP_ID_MAX, "id too long");

    /* the response for it, on a 2x1 result */
    const int32_t ids[2] = {1, 0};
    const float conf[2] = {0.5f, 1.0f};
    srv_oip_tensors t = {.w = 2, .h = 1, .labels = ids, .semantic = ids, .confidence = conf,
                         .segments_info = r.oip.id, .segments_len = strlen(r.oip.id)};
    srv_buf b;
    srv_buf_init(&b, 0);
    size_t hl = 0;
    check(srv_oip_encode(&r.oip, "m", NULL, &t, &b, &hl) == 0, "encode failed");
    json_t *j = json_loadb(b.data, hl, 0, NULL);
    check(j != NULL, "the response header is not JSON");
    size_t bin = 0, k;
    json_t *o;
    json_array_foreach(json_object_get(j, "outputs"), k, o) {
        json_t *sz = json_object_get(json_object_get(o, "parameters"), "binary_data_size");
        bin += sz ? (size_t)json_integer_value(sz) : 0;
    }
    check(hl + bin == b.len, "binary sizes do not add up to the body");
    json_decref(j);
    srv_buf_free(&b);
    srv_request_free(&r);
    return 0;
}
