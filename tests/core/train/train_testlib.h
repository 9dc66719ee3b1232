/* Shared by the training tests: the tiny test config and a fresh model. */
#ifndef IC_TESTS_TRAIN_TESTLIB_H
#define IC_TESTS_TRAIN_TESTLIB_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/pdl_train.h"
#include "testutil.h"

/* models/configs/tiny-test.json as text (malloc'd) and parsed. */
static inline char *tt_tiny_config(ic_pdl_config *cfg)
{
    FILE *f = fopen(tu_path("../models/configs/tiny-test.json"), "rb");
    ck_assert(f != NULL);
    char *text = malloc(1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    fclose(f);
    text[n] = 0;
    ck_assert_int_eq(ic_pdl_config_parse(cfg, text, n), 0);
    return text;
}

#endif
