/* One segmentation request, parsed once.
 *
 * The HTTP side (http.c) streams the uploads into a srv_request and keeps
 * the option values of the form; srv_request_parse() then turns those, the
 * URL query and the Content-Type headers into the engine's segment options
 * (core/infer/segment.h) in one place, with no libmicrohttpd involved, so
 * tests/server/test_request.c and tests/fuzz/fuzz_request.c call it
 * directly. From then on the job (job.h) owns the request and the worker
 * hands it to the backend unchanged.
 *
 * To add an option: a row in SRV_REQUEST_OPTIONS, a field below if the
 * engine options have no place for it, and a case in parse_option()
 * (request.c). Another front end (say a JSON body) fills a srv_request_args
 * with its key/value pairs and calls the same parser. */
#ifndef SRV_REQUEST_H
#define SRV_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "api_error.h"
#include "buf.h"
#include "config.h"
#include "infer/segment.h"

/* The options a request may set as form fields or query arguments, one row
 * each: X(ID, name, longest form value in bytes). */
#define SRV_REQUEST_OPTIONS(X)        \
    X(CALIBRATION, "calibration", 31) \
    X(M, "m", 31)                     \
    X(OUTPUTS, "outputs", 127)        \
    X(RLE, "rle", 15)                 \
    X(SIZE, "size", 15)

typedef enum srv_option {
#define SRV_OPT_ENUM(id, name, max_len) SRV_OPT_##id,
    SRV_REQUEST_OPTIONS(SRV_OPT_ENUM)
#undef SRV_OPT_ENUM
    SRV_OPT_COUNT
} srv_option;

/* The longest max_len of the table, for buffers that hold any option. */
#define SRV_OPT_VALUE_MAX 127

/* The option called name, or SRV_OPT_COUNT. */
srv_option srv_option_find(const char *name);
/* The name of option o. */
const char *srv_option_name(srv_option o);
/* The longest form value option o accepts (bytes). */
size_t srv_option_max_len(srv_option o);

/* One key and value (NUL-terminated; pointers, nothing is copied). */
typedef struct srv_kv {
    const char *key, *value;
} srv_kv;

/* Everything a request says besides its uploads. An empty value counts as
 * absent; a form value wins over a query value of the same option. */
typedef struct srv_request_args {
    const srv_kv *form;          /* option fields of a multipart body */
    size_t n_form;
    const srv_kv *query;         /* URL query arguments; keys that are no option are ignored */
    size_t n_query;
    const char *content_type;    /* the request's Content-Type header, or NULL */
    const char *image_part_type; /* Content-Type of the form's image part, or NULL */
} srv_request_args;

/* What an Open Inference Protocol request (oip.h) asks for: the outputs
 * (bit 1 << SRV_OIP_*), those of them to send as binary data, and the id to
 * echo. outputs == 0: a /v1/segment request. */
#define SRV_OIP_ID_MAX 255
typedef struct srv_oip_want {
    unsigned outputs, binary;
    int has_id;
    char id[SRV_OIP_ID_MAX + 1];
} srv_oip_want;

/* A segmentation request. */
typedef struct srv_request {
    char id[72];                 /* request id (logs, response) */
    srv_buf image;               /* the uploaded image (len > 0 once parsed) */
    srv_buf label;               /* optional ground-truth PNG (len 0: none) */
    srv_buf label_segments;      /* its segments_info JSON text, NUL-terminated (len 0: none) */
    char image_type[16];         /* declared type: "image/jpeg", "image/png", or "" */
    /* What to compute: calib (mode, m), outputs (IC_OUT_*, with IC_OUT_RLE),
     * limits.max_pixels. The backend adds what is its own (the TENT copy). */
    ic_segment_opts opts;
    int has_m;                   /* the request gave m */
    int64_t deadline_ns;         /* srv_clock_ns() time; backends may stop early */
    srv_oip_want oip;            /* POST /v2/models/{name}/infer (oip.h) */
} srv_request;

/* An empty request whose uploads may grow to max_upload bytes each. */
void srv_request_init(srv_request *r, size_t max_upload);
/* Frees the uploads; r stays a valid empty request. Accepts NULL. */
void srv_request_free(srv_request *r);
/* Moves src into dst (dst's old contents are not freed); src becomes empty. */
void srv_request_move(srv_request *dst, srv_request *src);

/* The upload buffer of the form part called name (image, label,
 * label_segments), or NULL when name is no upload. */
srv_buf *srv_request_upload(srv_request *r, const char *name);

/* "image, label, label_segments, calibration, m, outputs, rle, size": every
 * field name a form may use, for messages. */
const char *srv_request_field_names(void);

/* How a body with this Content-Type (NULL: none) is read. */
typedef enum srv_body_kind {
    SRV_BODY_UNSUPPORTED = 0, /* 415 unsupported_media_type */
    SRV_BODY_IMAGE,           /* the raw image */
    SRV_BODY_MULTIPART,       /* multipart/form-data */
} srv_body_kind;
srv_body_kind srv_request_body_kind(const char *content_type);

/* Parses the options of a with the server's defaults (cfg: default
 * calibration, max_pixels) into r->opts, r->has_m and r->image_type, then
 * checks them against the uploads already in r. Returns SRV_ERR_NONE, or
 * the error to answer (unknown_field, bad_field, bad_parameter,
 * missing_image) with its message in ic_error_message(). On error
 * r->opts.calib.mode is the requested mode when that much was valid, else
 * IC_CALIB_COUNT. */
srv_err srv_request_parse(srv_request *r, const srv_request_args *a, const srv_config *cfg);

#endif
