/* `instcal convert detectron2 IN OUT --config NAME`: converts a detectron2
 * Panoptic-DeepLab checkpoint (a Python pickle of numpy arrays) to our
 * safetensors. Reading pickles is Python's job, so this runs the converter
 * script tools/convert_detectron2.py with Debian's python3 (+ numpy); the
 * script validates every name and shape against the config. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/commands.h"

#ifndef IC_SOURCE_ROOT
#define IC_SOURCE_ROOT "."
#endif

static const char usage[] =
    "usage: instcal convert detectron2 IN.pkl OUT.safetensors --config NAME|FILE\n"
    "  NAME is a config under models/configs (e.g. cityscapes-r52-dsconv) or a path.\n"
    "  Needs python3 and python3-numpy (torch only for .pth inputs).\n";

int cmd_convert(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "detectron2")) {
        fputs(usage, argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    const char *in = NULL, *out = NULL, *config = NULL;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
        else if (!strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!in)
            in = argv[i];
        else if (!out)
            out = argv[i];
        else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!in || !out || !config) {
        fputs(usage, stderr);
        return 2;
    }
    char cfg_path[4096], script[4096];
    struct stat st;
    if (stat(config, &st) == 0)
        snprintf(cfg_path, sizeof cfg_path, "%s", config);
    else
        snprintf(cfg_path, sizeof cfg_path, "%s/models/configs/%s.json", IC_SOURCE_ROOT, config);
    snprintf(script, sizeof script, "%s/tools/convert_detectron2.py", IC_SOURCE_ROOT);
    char *const args[] = {"python3", script, "--config", cfg_path, (char *)in, (char *)out, NULL};
    /* Debian's interpreter first: it is the one with python3-numpy. */
    execv("/usr/bin/python3", args);
    execvp("python3", args);
    fprintf(stderr, "instcal convert: cannot run python3: %s (apt-get install python3 python3-numpy)\n",
            strerror(errno));
    return 1;
}
