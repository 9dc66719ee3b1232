/* Panoptic-DeepLab model configuration (the "instcal-pdl" JSON format).
 *
 * docs/model-config.md documents every key; tests/golden/pdl_torch.py is the
 * independent Python reading of the same format. The parser fills defaults,
 * checks every value and reports the first problem with the key's path. */
#ifndef IC_MODEL_CONFIG_H
#define IC_MODEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define IC_PDL_MAX_CLASSES 256
#define IC_PDL_MAX_BLOCKS 64
#define IC_PDL_NAME_LEN 64

typedef struct ic_pdl_head_config {
    int project_channels[2];  /* 1x1 projections of res2, res3 */
    int aspp_channels;
    int aspp_dilations[3];
    int aspp_pool_global;     /* 1: AdaptiveAvgPool(1); 0: AvgPool(kernel, stride 1) */
    int aspp_pool_kernel[2];  /* (kh, kw) when not global */
    int decoder_channels[3];  /* at res2, res3, res5 (ASPP output) */
    int dsconv;               /* depthwise-separable fuse/head convs */
    int head_channels;        /* semantic head */
    int center_head_channels; /* instance head */
    int offset_head_channels; /* instance head */
} ic_pdl_head_config;

typedef struct ic_pdl_config {
    char name[IC_PDL_NAME_LEN];
    float pixel_mean[3], pixel_std[3]; /* RGB, 0..255 scale */
    int size_divisibility;             /* pad inputs to a multiple (0: none) */
    int train_crop[2];                 /* (h, w) the model was trained at; 0 if unknown */
    int min_size_test, max_size_test;  /* test-time ResizeShortestEdge; 0 = keep size */
    float bn_eps;

    int stem_channels[3];
    int res2_out_channels;
    int width_per_group;
    int blocks[4];                     /* res2..res5 */
    int res4_dilation, res5_dilation;
    int multi_grid[IC_PDL_MAX_BLOCKS]; /* res5, one per block */

    ic_pdl_head_config sem, ins;
    int num_classes;

    /* post-processing */
    float center_threshold;
    int nms_kernel, top_k, stuff_area, label_divisor;

    /* classes */
    char class_names[IC_PDL_MAX_CLASSES][32];
    uint8_t class_colors[IC_PDL_MAX_CLASSES][3];
    uint8_t is_thing[IC_PDL_MAX_CLASSES];
    int ignore_value;

    /* calibration */
    float clamp_eps;
    float u_init;
    int c_num_basis, c_hidden;
    float c_prior;
} ic_pdl_config;

/* Parses a config from JSON text (len bytes). Returns 0, or IC_EFORMAT with
 * a message naming the offending key. */
int ic_pdl_config_parse(ic_pdl_config *cfg, const char *json, size_t len);

/* Reads and parses a config file. Returns 0, IC_EIO or IC_EFORMAT. */
int ic_pdl_config_load(ic_pdl_config *cfg, const char *path);

/* Stage geometry derived from the config (detectron2 build_resnet_deeplab_backbone):
 * input/bottleneck/output channels, first stride and per-block dilation. */
typedef struct ic_pdl_stage {
    int blocks, cin, bottleneck, cout, stride;
    int dilation[IC_PDL_MAX_BLOCKS];
} ic_pdl_stage;

void ic_pdl_config_stages(const ic_pdl_config *cfg, ic_pdl_stage stages[4]);

#endif
