/* The Open Inference Protocol (KServe / Triton "v2") inference codec:
 * POST /v2/models/{name}/infer requests in, tensors out, with no sockets
 * and no libmicrohttpd, so tests/server/test_oip.c and tests/fuzz/fuzz_oip.c
 * call it directly (docs/api.md, "Open Inference Protocol").
 *
 * A request body is a JSON header, optionally followed by binary tensor
 * data (the binary tensor data extension): the header's length is then in
 * the `Inference-Header-Content-Length` HTTP header, and each input with
 * `parameters.binary_data_size` takes that many bytes of what follows, in
 * the order of `inputs`. The model has one input, `image` (BYTES, shape
 * [1]: one encoded JPEG or PNG; as binary data a BYTES element is a 4-byte
 * little-endian length and the bytes, in JSON a base64 string), and four
 * outputs (SRV_OIP_OUTPUTS). Request parameters: `calibration`, `m`, `size`
 * (as /v1/segment) and `binary_data_output`. */
#ifndef SRV_OIP_H
#define SRV_OIP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api_error.h"
#include "buf.h"
#include "config.h"
#include "request.h"

/* The outputs: X(ID, name, datatype, default, what). `default` ones are
 * returned when the request names no outputs. */
#define SRV_OIP_OUTPUTS(X)                                                                 \
    X(LABELS, "labels", "INT32", 1, "[H, W] panoptic segment ids (0 = void), the ids of "  \
      "segments_info and of /v1/segment's panoptic PNG")                                   \
    X(SEMANTIC, "semantic", "INT32", 0, "[H, W] class ids")                                \
    X(CONFIDENCE, "confidence", "FP32", 0, "[H, W] max softmax probability")               \
    X(SEGMENTS_INFO, "segments_info", "BYTES", 1,                                          \
      "[1] one JSON array: the `segments` of /v1/segment")

enum {
#define SRV_OIP_INDEX(id, name, dt, def, what) SRV_OIP_##id,
    SRV_OIP_OUTPUTS(SRV_OIP_INDEX)
#undef SRV_OIP_INDEX
    SRV_OIP_N_OUTPUTS
};

/* The name, datatype and default flag of output i (0 <= i < SRV_OIP_N_OUTPUTS). */
const char *srv_oip_output_name(int i);
const char *srv_oip_output_datatype(int i);
int srv_oip_output_default(int i);

/* The HTTP header of the JSON header's length (binary tensor data). */
#define SRV_OIP_HEADER_LENGTH "Inference-Header-Content-Length"

/* The protocol extensions GET /v2 lists. */
#define SRV_OIP_EXTENSIONS "binary_tensor_data"

/* Parses an inference request body (len bytes; header_len the value of
 * the Inference-Header-Content-Length header, NULL when absent: all of
 * the body is JSON) into r: the image into r->image, calibration and m
 * through srv_request_parse() (cfg's defaults and limits), the wanted
 * outputs and the request id into r->oip. Returns SRV_ERR_NONE, or the
 * error to answer (bad_infer_request, unknown_tensor, bad_binary_data,
 * missing_image, bad_parameter, too_large) with its message in
 * ic_error_message(). r must be an empty request (srv_request_init). */
srv_err srv_oip_parse(srv_request *r, const char *body, size_t len, const char *header_len,
                      const srv_config *cfg);

/* The tensors of one result, maps at (h, w). */
typedef struct srv_oip_tensors {
    int w, h;
    const int32_t *labels, *semantic;
    const float *confidence;
    const char *segments_info; /* JSON text */
    size_t segments_len;
} srv_oip_tensors;

/* Writes the response for request want (its outputs, binary flags and id)
 * into out: the JSON header, then the binary outputs. model names the
 * model; params (borrowed, may be NULL) becomes the response's
 * `parameters`. *header_len is the JSON header's length; it equals
 * out->len when no output is binary (then no Inference-Header-Content-
 * Length is sent). Returns 0 or IC_ENOMEM / IC_ELIMIT. */
int srv_oip_encode(const srv_oip_want *want, const char *model, json_t *params,
                   const srv_oip_tensors *t, srv_buf *out, size_t *header_len);

#endif
