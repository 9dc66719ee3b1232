/* Every error the HTTP API answers, in one table: the status, the
 * `error.code` string and what it means. The responses, the mapping of
 * engine errors (IC_E*) to responses and the status table of docs/api.md
 * all come from these rows; tests/server/test_api_error.c fails when the
 * table in docs/api.md differs from srv_api_error_table_md(), and prints
 * the table to paste. To add a code: one row here (then paste the table). */
#ifndef SRV_API_ERROR_H
#define SRV_API_ERROR_H

#include "buf.h"

/* X(ID, status, code, when): one row per error code, in the order of the docs table. */
#define SRV_API_ERRORS(X)                                                                         \
    X(BAD_PARAMETER, 400, "bad_parameter",                                                        \
      "unknown `calibration`, a mode the model does not offer (e.g. `instcal-c` without its "     \
      "tensors, `tent` with `tent = off`), `m` not in [0, 1], `manual` without `m`, bad "         \
      "`outputs`/`rle`, `size` not an integer in [`min_request_size`, `max_request_size`], "    \
      "`label_segments` without `label`; on `/v2/.../infer` also an unknown "                     \
      "request parameter or a `calibration` or `m` of the wrong JSON type")                        \
    X(MISSING_IMAGE, 400, "missing_image",                                                        \
      "no `image` field, or an empty body; on `/v2/.../infer` no `image` input, or one without "  \
      "data")                                                                                     \
    X(BAD_IMAGE, 400, "bad_image",                                                                \
      "the image is corrupt or truncated, not JPEG/PNG, or not the type its content type says; "  \
      "the message is the decoder's (e.g. `corrupt JPEG: Premature end of JPEG file`)")           \
    X(BAD_LABEL, 400, "bad_label",                                                                \
      "the label is not a valid label PNG, its class or segment ids are not the model's, its "    \
      "size differs from the image, or `label_segments` is not one valid JSON value (nothing "    \
      "may follow it) or lists more than 4095 segments; checked before inference")                \
    X(BAD_MULTIPART, 400, "bad_multipart",                                                        \
      "malformed or truncated multipart body, no boundary, or a part without a name")             \
    X(UNKNOWN_FIELD, 400, "unknown_field", "a form field that is neither an upload nor an option") \
    X(BAD_FIELD, 400, "bad_field", "an option value longer than the option allows")               \
    X(BAD_FRAMING, 400, "bad_framing",                                                            \
      "ambiguous message framing, refused before any body is read: two different "                \
      "`Content-Length` values, a `Content-Length` together with `Transfer-Encoding`, or a "      \
      "`Transfer-Encoding` that does not end with `chunked` (RFC 9112 6.3)")                      \
    X(BAD_INFER_REQUEST, 400, "bad_infer_request",                                                \
      "`/v2/.../infer`: the JSON header is not valid JSON or not an inference request (unknown "  \
      "key, `inputs` not an array, an `id` that is not a string of at most 255 bytes), the "      \
      "`image` input's datatype is not BYTES or its shape not [1], both `data` and "               \
      "`binary_data_size`, JSON data that is not one base64 string, an output requested twice "  \
      "or with a parameter other than `binary_data`")                                             \
    X(UNKNOWN_TENSOR, 400, "unknown_tensor",                                                      \
      "`/v2/.../infer`: an input other than `image` or an output the model does not have (see "  \
      "`GET /v2/models/{name}`)")                                                                 \
    X(BAD_BINARY_DATA, 400, "bad_binary_data",                                                    \
      "`/v2/.../infer`: an `Inference-Header-Content-Length` that is not a number or is longer "  \
      "than the body, `binary_data_size`s that do not add up to the bytes after the JSON "        \
      "header, or a BYTES element whose 4-byte length disagrees with its `binary_data_size`")     \
    X(FORBIDDEN, 403, "forbidden",                                                                \
      "a static path with `..`, a remaining `%` or a control character")                          \
    X(NOT_FOUND, 404, "not_found", "no such route or file")                                       \
    X(MODEL_NOT_FOUND, 404, "model_not_found",                                                    \
      "`/v2/models/{name}` names a model that is not served, or `/versions/{v}` a version "       \
      "other than 1")                                                                             \
    X(METHOD_NOT_ALLOWED, 405, "method_not_allowed",                                              \
      "a known path with the wrong method (the `Allow` header lists the right ones)")             \
    X(REQUEST_TIMEOUT, 408, "request_timeout",                                                    \
      "the request line and headers took longer than `header_timeout_s`, or the body came "       \
      "slower than `min_body_rate`; the connection is closed after it")                           \
    X(TOO_LARGE, 413, "too_large",                                                                \
      "body over `max_upload_bytes`: a `Content-Length` over the limit is refused from the "      \
      "headers alone, before any upload (no `100 Continue`); chunked bodies are counted as they " \
      "arrive and answered as soon as they pass it. Also images (or labels) with more than "     \
      "`max_pixels` pixels, from the image header, before decoding, and progressive JPEGs of "   \
      "more than 100 scans.")                                                                     \
    X(URI_TOO_LONG, 414, "uri_too_long",                                                          \
      "a query string over 8 KiB or with more than 256 parameters (longer request lines get "    \
      "libmicrohttpd's own 414, header blocks over 128 KiB its 431)")                             \
    X(UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type",                                      \
      "a content type other than image/jpeg, image/png, multipart/form-data")                     \
    X(UNSUPPORTED_IMAGE, 415, "unsupported_image",                                                \
      "a known image format the server does not decode (GIF, WebP, BMP, TIFF, HEIF/AVIF, JPEG "   \
      "2000, QOI)")                                                                               \
    X(CLIENT_GONE, 499, "client_gone",                                                            \
      "never sent: the client closed the connection while its request was queued (logs and "      \
      "metrics only)")                                                                            \
    X(INTERNAL, 500, "internal", "a bug; please report it")                                       \
    X(NOT_IMPLEMENTED, 501, "not_implemented",                                                    \
      "a transfer coding before the final `chunked` (e.g. `Transfer-Encoding: gzip, chunked`), "  \
      "refused before any body is read")                                                                             \
    X(NOT_READY, 503, "not_ready",                                                                \
      "readiness routes and requests while no model is loaded, the server is draining or the "    \
      "queue is full")                                                                            \
    X(QUEUE_FULL, 503, "queue_full",                                                              \
      "all workers busy and the queue full: answered at once, with `Retry-After`")                \
    X(SHUTTING_DOWN, 503, "shutting_down", "after SIGTERM")                                       \
    X(TOO_MANY_CONNECTIONS, 503, "too_many_connections",                                          \
      "the client's address already holds `max_connections_per_ip` connections; the new one is " \
      "answered and closed at once")                                                              \
    X(OUT_OF_MEMORY, 503, "out_of_memory",                                                        \
      "the worker could not get memory for this image (heap, or its `worker_memory` cap); "       \
      "counted in `instcald_rejected_requests_total{reason=\"out_of_memory\"}`")                  \
    X(DEADLINE_EXCEEDED, 504, "deadline_exceeded",                                                \
      "the request waited in the queue past `deadline_ms` (answered when the deadline passes, "   \
      "not when a worker frees up)")

typedef enum srv_err {
    SRV_ERR_NONE = 0, /* no error (status 200) */
#define SRV_ERR_ENUM(id, status, code, when) SRV_ERR_##id,
    SRV_API_ERRORS(SRV_ERR_ENUM)
#undef SRV_ERR_ENUM
    SRV_ERR_COUNT
} srv_err;

/* Records the message (ic_error_set, IC_EINVAL) and returns e: how the
 * request parsers (request.c, oip.c) refuse a client's input. */
srv_err srv_err_fail(srv_err e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The HTTP status of e (200 for SRV_ERR_NONE). */
int srv_err_status(srv_err e);

/* The `error.code` string of e ("" for SRV_ERR_NONE). */
const char *srv_err_code(srv_err e);

/* The response for an engine error code rc (IC_E*) while handling the
 * image or, when label is non-zero, the ground-truth label: a bad file is
 * bad_image/bad_label (an unsupported image format 415), a limit 413, a bad
 * argument bad_parameter, no memory out_of_memory, anything else internal. */
srv_err srv_err_from_engine(int rc, int label);

/* Appends the status table of docs/api.md (markdown, one row per error and
 * a first row for 200). Returns 0 or IC_ENOMEM. */
int srv_api_error_table_md(srv_buf *out);

#endif
