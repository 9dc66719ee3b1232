/* Error codes and per-thread error messages for libinstcal.
 *
 * Every fallible library function returns an int: 0 on success, a negative
 * IC_E* code on failure. The function that detects the failure records a
 * human-readable message with ic_error_set(); callers read it with
 * ic_error_message() on the same thread. Library code never exits, aborts or
 * logs on bad input. */
#ifndef IC_BASE_ERR_H
#define IC_BASE_ERR_H

/* X(name, value, default text) */
#define IC_ERR_MAP(X)                                                \
    X(OK, 0, "success")                                              \
    X(EINVAL, -1, "invalid argument")                                \
    X(ENOMEM, -2, "out of memory")                                   \
    X(EIO, -3, "input/output error")                                 \
    X(EFORMAT, -4, "malformed data")                                 \
    X(EUNSUPPORTED, -5, "unsupported format or feature")             \
    X(ELIMIT, -6, "limit exceeded")                                  \
    X(ESHAPE, -7, "shape mismatch")                                  \
    X(ENOTFOUND, -8, "not found")                                    \
    X(ESTATE, -9, "invalid state")

enum ic_err {
#define IC_ERR_ENUM(name, value, text) IC_##name = (value),
    IC_ERR_MAP(IC_ERR_ENUM)
#undef IC_ERR_ENUM
};

/* Short symbolic name of a code, e.g. "EFORMAT"; "EUNKNOWN" for others. */
const char *ic_err_name(int code);

/* Default description of a code. */
const char *ic_strerror(int code);

/* Records a formatted message for this thread and returns code, so that a
 * failing function can `return ic_error_set(IC_EFORMAT, "...", ...);`. */
int ic_error_set(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Puts a formatted context in front of this thread's current message and
 * records code: after a failed decode, `return ic_error_prefix(rc, "label");`
 * gives "label: <the decoder's message>" (just the context if there was no
 * message). ic_error_set() may also take ic_error_message() as an argument;
 * both format into a copy first, so a message can be built from itself. */
int ic_error_prefix(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The last message recorded on this thread ("" if none). Valid until the
 * next ic_error_set() on this thread. */
const char *ic_error_message(void);

/* The code passed to the last ic_error_set() on this thread. */
int ic_error_code(void);

/* Forgets the last error of this thread. */
void ic_error_clear(void);

#endif
