/* `instcal`: the command line front end of libinstcal. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command;

static const command commands[] = {
    {"segment", cmd_segment, "segment images, write masks, overlay and JSON"},
    {"eval", cmd_eval, "evaluate a model on a COCO-panoptic dataset (mIoU, PQ, ECE)"},
    {"convert", cmd_convert, "convert a detectron2 checkpoint (instcal convert detectron2 ...)"},
    {"bench", cmd_bench, "benchmarks (instcal bench ops)"},
    {"synth", cmd_synth, "render SynthCity street scenes (COCO-panoptic, 7 domains)"},
    {"train", cmd_train, "train a Panoptic-DeepLab (COCO-panoptic data or SynthCity on the fly)"},
    {"calibrate", cmd_calibrate, "learn InstCal-U, InstCal-C or InstCal-G on a frozen model"},
    {"corrupt", cmd_corrupt, "held-out corrupted copy of a dataset (noise, blur, weather, digital)"},
    {"drift", cmd_drift, "how well the drift score separates SynthCity domains (AUROC)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: instcal COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n`instcal COMMAND --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "instcal: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
