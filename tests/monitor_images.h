/*
 * monitor_images.h -- monitor segment images built by hand, as the
 * publishing process would write them (layout: src/monitor_layout.h).
 * Shared by the reader's tests (test_monitor_reader.c) and the generator
 * of the fuzzer's seed corpus (make_monitor_seeds.c); header-only, so that
 * the test build needs no extra source.
 *
 * An image of a given shape is laid out in the order of the layout's
 * diagram, each part right after the one before:
 *
 *   header (+ header_extra) | answer area | threads | greenlets | strings
 *
 * Every value in it follows from the record's index (see the fill
 * functions), so a test can tell what a reader must find. Bytes past
 * version 1's structs (header_extra, record_extra) are filled with 0xab:
 * a reader that used them would show it.
 */
#ifndef GL_TEST_MONITOR_IMAGES_H
#define GL_TEST_MONITOR_IMAGES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor_layout.h"

typedef struct monitor_image_shape {
    uint32_t threads;
    uint32_t greenlets;
    uint32_t header_extra;    /* bytes past version 1's header */
    uint32_t record_extra;    /* bytes past each of version 1's records */
    uint32_t answer_capacity;
    int shared_strings;       /* every greenlet names greenlet 0's strings */
} monitor_image_shape;

#define MONITOR_IMAGE_PID 4242
#define MONITOR_IMAGE_RUNTIME "CPython 3.11.2"
#define MONITOR_IMAGE_SEQUENCE 42u
#define MONITOR_IMAGE_PUBLICATIONS 21u
#define MONITOR_IMAGE_PUBLISHED_NS 1000u

/* The strings area being built: appends return the reference. */
typedef struct monitor_image_strings {
    char *bytes;
    size_t size, capacity;
} monitor_image_strings;

static inline gl_monitor_string monitor_image_add_string(
    monitor_image_strings *strings, const char *text)
{
    size_t length = strlen(text);
    gl_monitor_string reference = {(uint32_t)strings->size,
                                   (uint32_t)length};
    if (length == 0 || strings->size + length > strings->capacity)
        return (gl_monitor_string){0, 0};
    memcpy(strings->bytes + strings->size, text, length);
    strings->size += length;
    return reference;
}

/* Greenlet `index` belongs to thread index % threads; the first `threads`
 * greenlets are the threads' main greenlets. Every third greenlet (from
 * index 2) has no place, every odd one a spawn site, every fifth (from
 * index 4) no name. */
static inline void monitor_image_fill_greenlet(const monitor_image_shape *shape,
                                               uint32_t index,
                                               gl_monitor_greenlet *record)
{
    uint32_t threads = shape->threads ? shape->threads : 1;
    memset(record, 0, sizeof *record);
    record->id = 100 + index;
    record->parent_id = index < threads ? 0 : 100 + index % threads;
    record->thread_serial = 1 + index % threads;
    record->state = index % 4;
    record->flags = (index < shape->threads ? GL_MONITOR_GREENLET_MAIN : 0) |
                    (index % 3 != 2 ? GL_MONITOR_GREENLET_PLACE : 0) |
                    (index % 2 ? GL_MONITOR_GREENLET_SPAWN_SITE : 0);
    record->stack_pointer = 0x7f0000000000u + 0x1000u * index;
    record->stack_stop = record->stack_pointer + 0x10000u;
    record->saved_bytes = 64u * index;
    record->saved_bytes_peak = 128u * index;
    record->switches = 7u * index;
    record->created_ns = 1000000u + index;
    record->last_ran_serial = 3u * index;
    record->line = 10 + index;
    record->spawn_line = 20 + index;
}

static inline void monitor_image_fill_thread(const monitor_image_shape *shape,
                                             uint32_t index,
                                             gl_monitor_thread *record)
{
    memset(record, 0, sizeof *record);
    record->serial = 1 + index;
    record->os_id = 1000 + index;
    record->exited = index == 1;
    record->switches = 10u * (index + 1);
    record->current_id = index < shape->greenlets ? 100 + index : 0;
    record->saved_bytes = 4096u * (index + 1);
    record->saved_bytes_peak = 8192u * (index + 1);
    record->greenlets = shape->greenlets / (shape->threads ? shape->threads : 1);
}

/* The strings of greenlet `index`, "" where the record has none. */
static inline void monitor_image_greenlet_texts(
    const monitor_image_shape *shape, uint32_t index, char texts[5][40])
{
    uint32_t named = shape->shared_strings ? 0 : index;
    gl_monitor_greenlet record;
    monitor_image_fill_greenlet(shape, index, &record);
    memset(texts, 0, 5 * sizeof texts[0]);
    if (index % 5 != 4)
        snprintf(texts[0], sizeof texts[0], "greenlet-%u", named);
    if (record.flags & GL_MONITOR_GREENLET_PLACE) {
        snprintf(texts[1], sizeof texts[1], "handler_%u", named);
        snprintf(texts[2], sizeof texts[2], "app/module_%u.py", named);
    }
    if (record.flags & GL_MONITOR_GREENLET_SPAWN_SITE) {
        snprintf(texts[3], sizeof texts[3], "spawner_%u", named);
        snprintf(texts[4], sizeof texts[4], "app/spawn_%u.py", named);
    }
}

/* Builds an image of `shape`: a calloc'ed buffer of *size bytes (free()
 * it), or NULL when out of memory. segment_size is *size. */
static inline unsigned char *monitor_image_build(const monitor_image_shape *shape,
                                                 size_t *size)
{
    size_t header_size = sizeof(gl_monitor_header) + shape->header_extra;
    size_t thread_size = sizeof(gl_monitor_thread) + shape->record_extra;
    size_t greenlet_size = sizeof(gl_monitor_greenlet) + shape->record_extra;
    size_t threads_offset = header_size + shape->answer_capacity;
    size_t greenlets_offset = threads_offset + shape->threads * thread_size;
    size_t strings_offset = greenlets_offset + shape->greenlets * greenlet_size;
    size_t strings_capacity = 40 * (shape->threads + 5 * (size_t)shape->greenlets);
    unsigned char *image = calloc(1, strings_offset + strings_capacity);
    if (!image)
        return NULL;
    memset(image + sizeof(gl_monitor_header), 0xab, shape->header_extra);
    monitor_image_strings strings = {(char *)image + strings_offset, 0,
                                     strings_capacity};

    uint64_t saved = 0;
    for (uint32_t i = 0; i < shape->threads; i++) {
        gl_monitor_thread record;
        char name[40];
        monitor_image_fill_thread(shape, i, &record);
        snprintf(name, sizeof name, "worker-%u", i);
        record.name = monitor_image_add_string(&strings, name);
        saved += record.saved_bytes;
        unsigned char *at = image + threads_offset + i * thread_size;
        memcpy(at, &record, sizeof record);
        memset(at + sizeof record, 0xab, shape->record_extra);
    }
    gl_monitor_string shared[5] = {{0, 0}};
    for (uint32_t i = 0; i < shape->greenlets; i++) {
        gl_monitor_greenlet record;
        char texts[5][40];
        monitor_image_fill_greenlet(shape, i, &record);
        monitor_image_greenlet_texts(shape, i, texts);
        gl_monitor_string references[5];
        for (int k = 0; k < 5; k++) {
            if (!texts[k][0])
                references[k] = (gl_monitor_string){0, 0};
            else if (shape->shared_strings && shared[k].length)
                references[k] = shared[k];
            else
                references[k] = shared[k] =
                    monitor_image_add_string(&strings, texts[k]);
        }
        record.name = references[0];
        record.function = references[1];
        record.file = references[2];
        record.spawn_function = references[3];
        record.spawn_file = references[4];
        unsigned char *at = image + greenlets_offset + i * greenlet_size;
        memcpy(at, &record, sizeof record);
        memset(at + sizeof record, 0xab, shape->record_extra);
    }

    gl_monitor_header header;
    memset(&header, 0, sizeof header);
    memcpy(header.magic, GL_MONITOR_MAGIC, sizeof header.magic);
    header.layout_version = GL_MONITOR_LAYOUT_VERSION;
    header.header_size = (uint32_t)header_size;
    header.pid = MONITOR_IMAGE_PID;
    header.thread_record_size = (uint32_t)thread_size;
    header.greenlet_record_size = (uint32_t)greenlet_size;
    header.answer_offset = header_size;
    header.answer_capacity = shape->answer_capacity;
    memcpy(header.runtime, MONITOR_IMAGE_RUNTIME, sizeof MONITOR_IMAGE_RUNTIME);
    header.publish_sequence = MONITOR_IMAGE_SEQUENCE;
    header.segment_size = strings_offset + strings.size;
    header.publications = MONITOR_IMAGE_PUBLICATIONS;
    header.published_ns = MONITOR_IMAGE_PUBLISHED_NS;
    header.threads_offset = threads_offset;
    header.greenlets_offset = greenlets_offset;
    header.strings_offset = strings_offset;
    header.thread_count = shape->threads;
    header.greenlet_count = shape->greenlets;
    header.strings_size = strings.size;
    header.process_saved_bytes = saved;
    header.flags = GL_MONITOR_PUBLICATION_PLACES;
    memcpy(image, &header, sizeof header);
    *size = (size_t)header.segment_size;
    return image;
}

#endif /* GL_TEST_MONITOR_IMAGES_H */
