/*
 * make_monitor_seeds.c -- writes the seed images of the monitor parser's
 * fuzz corpus (tests/corpus/monitor/seed-*), built by monitor_images.h
 * like the images of test_monitor_reader.c: valid publications of a few
 * shapes, and a few that fail each early check, for the fuzzer to mutate
 * from. Run by `make monitor-seeds`; the files are kept in git.
 *
 *   make-monitor-seeds DIRECTORY
 */
#include "monitor_images.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct seed {
    const char *name;
    monitor_image_shape shape;
    uint64_t publish_sequence; /* 0: as built */
    uint32_t layout_version;   /* 0: as built */
} seed;

static const seed seeds[] = {
    {"seed-empty", {0}, 0, 0},
    {"seed-one-greenlet", {.threads = 1, .greenlets = 1}, 0, 0},
    {"seed-usual", {.threads = 2, .greenlets = 7, .answer_capacity = 16}, 0, 0},
    {"seed-shared-strings",
     {.threads = 3, .greenlets = 12, .shared_strings = 1}, 0, 0},
    {"seed-larger-records",
     {.threads = 2, .greenlets = 5, .header_extra = 16, .record_extra = 8,
      .answer_capacity = 8},
     0, 0},
    {"seed-being-written", {.threads = 1, .greenlets = 3}, 43, 0},
    {"seed-version-2", {.threads = 1, .greenlets = 3}, 0, 2},
};

static int write_seed(const char *directory, const seed *item)
{
    size_t size;
    unsigned char *image = monitor_image_build(&item->shape, &size);
    if (!image)
        return 1;
    gl_monitor_header header;
    memcpy(&header, image, sizeof header);
    if (item->publish_sequence)
        header.publish_sequence = item->publish_sequence;
    if (item->layout_version)
        header.layout_version = item->layout_version;
    memcpy(image, &header, sizeof header);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", directory, item->name);
    FILE *file = fopen(path, "wb");
    int failed = !file || fwrite(image, 1, size, file) != size;
    if (file && fclose(file) != 0)
        failed = 1;
    if (failed)
        perror(path);
    free(image);
    return failed;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIRECTORY\n", argv[0]);
        return 2;
    }
    int failed = 0;
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++)
        failed |= write_seed(argv[1], &seeds[i]);
    return failed;
}
