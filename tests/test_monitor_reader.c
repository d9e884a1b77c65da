/*
 * test_monitor_reader.c -- the monitor segment reader (inspect/monitor_*.c)
 * against segments built by hand (monitor_images.h): parsing of good and
 * corrupt images, the seed and crash corpus of the fuzzer, and, through
 * forked children that play the publishing process, discovery in /proc,
 * opening, whole and fresh copies, requests, and files cut short.
 *
 * Images are parsed from copies of exactly their size, freed before the
 * snapshot is looked at, so that ASan and valgrind see any read past an
 * image and any snapshot pointer into it.
 *
 * Native builds only (GL_TEST_HAVE_INSPECT): the aarch64 test program
 * does not link inspect/.
 */
#ifdef GL_TEST_HAVE_INSPECT
#define _GNU_SOURCE
#include "glmonitor.h"
#include "monitor_images.h"
#include "runner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------ image helpers */

static const monitor_image_shape usual_shape = {
    .threads = 2, .greenlets = 7, .answer_capacity = 256};

static unsigned char *build(const monitor_image_shape *shape, size_t *size)
{
    unsigned char *image = monitor_image_build(shape, size);
    CHECK(image != NULL);
    return image;
}

static gl_monitor_header header_of(const unsigned char *image)
{
    gl_monitor_header header;
    memcpy(&header, image, sizeof header);
    return header;
}

/* Changes one header field of an image. */
#define SET_FIELD(image, field, value)                                        \
    do {                                                                      \
        gl_monitor_header set_header_ = header_of(image);                     \
        set_header_.field = (value);                                          \
        memcpy((image), &set_header_, sizeof set_header_);                    \
    } while (0)

/* Sets one header field of `image` (of `size` bytes) to `value`, checks
 * that the image no longer parses, and puts the header back from `good`. */
#define EXPECT_CORRUPT(field, value)                                          \
    do {                                                                      \
        SET_FIELD(image, field, value);                                       \
        CHECK_EQ(parse_code(image, size), GL_ECORRUPT);                       \
        memcpy(image, &good, sizeof good);                                    \
    } while (0)

static size_t greenlet_at(const unsigned char *image, uint32_t index)
{
    gl_monitor_header header = header_of(image);
    return header.greenlets_offset + (size_t)index * header.greenlet_record_size;
}

static gl_monitor_greenlet greenlet_of(const unsigned char *image,
                                       uint32_t index)
{
    gl_monitor_greenlet record;
    memcpy(&record, image + greenlet_at(image, index), sizeof record);
    return record;
}

static void put_greenlet(unsigned char *image, uint32_t index,
                         const gl_monitor_greenlet *record)
{
    memcpy(image + greenlet_at(image, index), record, sizeof *record);
}

/* Parses a copy of exactly `size` bytes, freed before returning. */
static int parse_copy(const unsigned char *image, size_t size,
                      gl_monitor_snapshot **out)
{
    unsigned char *copy = malloc(size ? size : 1);
    CHECK(copy != NULL);
    memcpy(copy, image, size);
    int code = gl_monitor_parse(copy, size, out);
    free(copy);
    return code;
}

/* The code of parsing; frees the snapshot of a success. */
static int parse_code(const unsigned char *image, size_t size)
{
    gl_monitor_snapshot *snapshot = NULL;
    int code = parse_copy(image, size, &snapshot);
    CHECK((code == 0) == (snapshot != NULL));
    gl_monitor_snapshot_free(snapshot);
    return code;
}

static char sanitized(unsigned char byte)
{
    return (byte < 0x20 || byte == 0x7f) ? '?' : (char)byte;
}

/* `text` is the string `reference` of the image, sanitized. */
static void check_string(const char *text, const unsigned char *image,
                         gl_monitor_string reference)
{
    gl_monitor_header header = header_of(image);
    CHECK(text != NULL);
    CHECK_EQ(strlen(text), reference.length);
    for (uint32_t i = 0; i < reference.length; i++)
        CHECK_EQ(text[i], sanitized(image[header.strings_offset +
                                          reference.offset + i]));
}

/* Every field of the snapshot is the image's, record for record. */
static void check_matches_image(const gl_monitor_snapshot *snapshot,
                                const unsigned char *image)
{
    gl_monitor_header header = header_of(image);
    CHECK_EQ(snapshot->pid, header.pid);
    CHECK_EQ(snapshot->has_places,
             (header.flags & GL_MONITOR_PUBLICATION_PLACES) != 0);
    CHECK_EQ(snapshot->publications, header.publications);
    CHECK_EQ(snapshot->published_ns, header.published_ns);
    CHECK_EQ(snapshot->process_saved_bytes, header.process_saved_bytes);
    CHECK_EQ(snapshot->thread_count, header.thread_count);
    CHECK_EQ(snapshot->greenlet_count, header.greenlet_count);
    for (uint32_t i = 0; i < header.thread_count; i++) {
        gl_monitor_thread record;
        memcpy(&record,
               image + header.threads_offset +
                   (size_t)i * header.thread_record_size,
               sizeof record);
        const gl_monitor_thread_view *view = &snapshot->threads[i];
        CHECK_EQ(view->serial, record.serial);
        CHECK_EQ(view->os_id, record.os_id);
        CHECK_EQ(view->exited, record.exited != 0);
        CHECK_EQ(view->switches, record.switches);
        CHECK_EQ(view->current_id, record.current_id);
        CHECK_EQ(view->saved_bytes, record.saved_bytes);
        CHECK_EQ(view->saved_bytes_peak, record.saved_bytes_peak);
        CHECK_EQ(view->greenlets, record.greenlets);
        check_string(view->name, image, record.name);
    }
    for (uint32_t i = 0; i < header.greenlet_count; i++) {
        gl_monitor_greenlet record = greenlet_of(image, i);
        const gl_monitor_greenlet_view *view = &snapshot->greenlets[i];
        CHECK_EQ(view->id, record.id);
        CHECK_EQ(view->parent_id, record.parent_id);
        CHECK_EQ(view->thread_serial, record.thread_serial);
        CHECK_EQ(view->state, record.state);
        CHECK_EQ(view->is_main, (record.flags & GL_MONITOR_GREENLET_MAIN) != 0);
        CHECK_EQ(view->has_place,
                 (record.flags & GL_MONITOR_GREENLET_PLACE) != 0);
        CHECK_EQ(view->has_spawn_site,
                 (record.flags & GL_MONITOR_GREENLET_SPAWN_SITE) != 0);
        CHECK_EQ(view->stack_pointer, record.stack_pointer);
        CHECK_EQ(view->stack_stop, record.stack_stop);
        CHECK_EQ(view->saved_bytes, record.saved_bytes);
        CHECK_EQ(view->saved_bytes_peak, record.saved_bytes_peak);
        CHECK_EQ(view->switches, record.switches);
        CHECK_EQ(view->created_ns, record.created_ns);
        CHECK_EQ(view->last_ran_serial, record.last_ran_serial);
        CHECK_EQ(view->line, record.line);
        CHECK_EQ(view->spawn_line, record.spawn_line);
        check_string(view->name, image, record.name);
        check_string(view->function, image, record.function);
        check_string(view->file, image, record.file);
        check_string(view->spawn_function, image, record.spawn_function);
        check_string(view->spawn_file, image, record.spawn_file);
    }
}

/* Parses (from an exact copy) and checks against the image. */
static void check_parses_as_image(const unsigned char *image, size_t size)
{
    gl_monitor_snapshot *snapshot = NULL;
    CHECK_OK(parse_copy(image, size, &snapshot));
    check_matches_image(snapshot, image);
    gl_monitor_snapshot_free(snapshot);
}

static uint64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static uint64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void sleep_ms(unsigned milliseconds)
{
    struct timespec pause = {milliseconds / 1000,
                             (long)(milliseconds % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) < 0 && errno == EINTR)
        ;
}

/* --------------------------------------------------------------- parse */

TEST(monitor_parse_reads_a_good_image_exactly)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    gl_monitor_snapshot *snapshot = NULL;
    CHECK_OK(parse_copy(image, size, &snapshot));

    CHECK_EQ(snapshot->pid, 4242);
    CHECK(strcmp(snapshot->runtime, "CPython 3.11.2") == 0);
    CHECK_EQ(snapshot->has_places, 1);
    CHECK_EQ(snapshot->publications, 21);
    CHECK_EQ(snapshot->published_ns, 1000);
    CHECK_EQ(snapshot->process_saved_bytes, 4096 + 8192);
    CHECK_EQ(snapshot->thread_count, 2);
    CHECK_EQ(snapshot->greenlet_count, 7);

    const gl_monitor_thread_view *second = &snapshot->threads[1];
    CHECK_EQ(second->serial, 2);
    CHECK_EQ(second->os_id, 1001);
    CHECK_EQ(second->exited, 1);
    CHECK_EQ(second->switches, 20);
    CHECK_EQ(second->current_id, 101);
    CHECK_EQ(second->saved_bytes, 8192);
    CHECK_EQ(second->saved_bytes_peak, 16384);
    CHECK_EQ(second->greenlets, 3);
    CHECK(strcmp(second->name, "worker-1") == 0);
    CHECK_EQ(snapshot->threads[0].exited, 0);

    const gl_monitor_greenlet_view *one = &snapshot->greenlets[1];
    CHECK_EQ(one->id, 101);
    CHECK_EQ(one->parent_id, 0);
    CHECK_EQ(one->thread_serial, 2);
    CHECK_EQ(one->state, GL_STATE_RUNNING);
    CHECK_EQ(one->is_main, 1);
    CHECK_EQ(one->has_place, 1);
    CHECK_EQ(one->has_spawn_site, 1);
    CHECK_EQ(one->stack_pointer, 0x7f0000001000);
    CHECK_EQ(one->stack_stop, 0x7f0000011000);
    CHECK_EQ(one->saved_bytes, 64);
    CHECK_EQ(one->saved_bytes_peak, 128);
    CHECK_EQ(one->switches, 7);
    CHECK_EQ(one->created_ns, 1000001);
    CHECK_EQ(one->last_ran_serial, 3);
    CHECK_EQ(one->line, 11);
    CHECK_EQ(one->spawn_line, 21);
    CHECK(strcmp(one->name, "greenlet-1") == 0);
    CHECK(strcmp(one->function, "handler_1") == 0);
    CHECK(strcmp(one->file, "app/module_1.py") == 0);
    CHECK(strcmp(one->spawn_function, "spawner_1") == 0);
    CHECK(strcmp(one->spawn_file, "app/spawn_1.py") == 0);

    const gl_monitor_greenlet_view *five = &snapshot->greenlets[5];
    CHECK_EQ(five->id, 105);
    CHECK_EQ(five->parent_id, 101);
    CHECK_EQ(five->state, GL_STATE_RUNNING);
    CHECK_EQ(five->is_main, 0);
    CHECK_EQ(five->has_place, 0); /* 5 % 3 == 2: no place */
    CHECK(strcmp(five->function, "") == 0 && strcmp(five->file, "") == 0);
    CHECK_EQ(snapshot->greenlets[4].state, GL_STATE_NEW);
    CHECK(strcmp(snapshot->greenlets[4].name, "") == 0);
    CHECK(strcmp(snapshot->greenlets[4].spawn_file, "") == 0);
    CHECK_EQ(snapshot->greenlets[3].state, GL_STATE_DEAD);
    CHECK_EQ(snapshot->greenlets[2].state, GL_STATE_SUSPENDED);

    check_matches_image(snapshot, image);
    gl_monitor_snapshot_free(snapshot);
    gl_monitor_snapshot_free(NULL);
    free(image);
}

TEST(monitor_parse_reads_other_shapes)
{
    const monitor_image_shape shapes[] = {
        {0},                                     /* nothing published */
        {.threads = 1, .greenlets = 1},          /* no answer area */
        {.threads = 3, .greenlets = 40, .answer_capacity = 16,
         .shared_strings = 1},                   /* strings referenced often */
        /* A future compatible layout: longer header and records, whose
         * extra bytes (0xab) must be skipped. */
        {.threads = 2, .greenlets = 9, .header_extra = 40, .record_extra = 24,
         .answer_capacity = 8},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        size_t size;
        unsigned char *image = build(&shapes[i], &size);
        check_parses_as_image(image, size);
        /* Bytes past segment_size (a file longer than the publication)
         * are not looked at. */
        unsigned char *longer = calloc(1, size + 100);
        CHECK(longer != NULL);
        memcpy(longer, image, size);
        memset(longer + size, 0xee, 100);
        check_parses_as_image(longer, size + 100);
        free(longer);
        free(image);
    }
}

TEST(monitor_parse_refuses_arguments_it_cannot_use)
{
    gl_monitor_snapshot *snapshot = (gl_monitor_snapshot *)&snapshot;
    CHECK_EQ(gl_monitor_parse(NULL, 10, &snapshot), GL_EINVAL);
    CHECK_EQ(gl_monitor_parse("GLMONITR", 8, NULL), GL_EINVAL);
    CHECK_EQ(gl_monitor_parse(NULL, 0, &snapshot), GL_ECORRUPT);
    CHECK(snapshot == NULL);
}

TEST(monitor_parse_refuses_other_magic_and_versions)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    for (size_t i = 0; i < 8; i++) {
        image[i] ^= 0x20;
        CHECK_EQ(parse_code(image, size), GL_ENOMONITOR);
        CHECK_EQ(parse_code(image, i + 1), GL_ENOMONITOR); /* seen early */
        image[i] ^= 0x20;
    }
    unsigned char zeros[512] = {0};
    CHECK_EQ(parse_code(zeros, sizeof zeros), GL_ENOMONITOR);
    const unsigned char elf[] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0};
    CHECK_EQ(parse_code(elf, sizeof elf), GL_ENOMONITOR);

    const uint32_t versions[] = {0, 2, 0x01000000, UINT32_MAX};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        SET_FIELD(image, layout_version, versions[i]);
        CHECK_EQ(parse_code(image, size), GL_EVERSION);
        /* The version is told before the size: a newer layout may have a
         * smaller header. */
        CHECK_EQ(parse_code(image, 12), GL_EVERSION);
    }
    free(image);
}

TEST(monitor_parse_refuses_a_publication_being_written)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    SET_FIELD(image, publish_sequence, 43);
    CHECK_EQ(parse_code(image, size), GL_ECORRUPT);
    SET_FIELD(image, publish_sequence, UINT64_MAX);
    CHECK_EQ(parse_code(image, size), GL_ECORRUPT);
    SET_FIELD(image, publish_sequence, 44);
    CHECK_EQ(parse_code(image, size), 0);
    free(image);
}

TEST(monitor_parse_refuses_impossible_sizes)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    gl_monitor_header good = header_of(image);
    EXPECT_CORRUPT(header_size, sizeof(gl_monitor_header) - 1);
    EXPECT_CORRUPT(header_size, 0);
    EXPECT_CORRUPT(header_size, good.segment_size + 1);
    EXPECT_CORRUPT(header_size, UINT32_MAX);
    EXPECT_CORRUPT(thread_record_size, sizeof(gl_monitor_thread) - 1);
    EXPECT_CORRUPT(thread_record_size, 0);
    EXPECT_CORRUPT(greenlet_record_size, sizeof(gl_monitor_greenlet) - 1);
    EXPECT_CORRUPT(greenlet_record_size, 0);
    EXPECT_CORRUPT(segment_size, size + 1);
    EXPECT_CORRUPT(segment_size, UINT64_MAX);
    EXPECT_CORRUPT(segment_size, sizeof(gl_monitor_header) - 1);
    EXPECT_CORRUPT(segment_size, 0);
    /* Records as long as the whole segment cannot be strided through. */
    EXPECT_CORRUPT(thread_record_size, UINT32_MAX);
    EXPECT_CORRUPT(greenlet_record_size, (uint32_t)size);
    CHECK_EQ(parse_code(image, size), 0);
    free(image);
}

TEST(monitor_parse_refuses_arrays_outside_the_segment)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    gl_monitor_header good = header_of(image);
    /* Inside the header, partly past the end, wholly past it, and at
     * offsets where offset + count * size wraps around. */
    EXPECT_CORRUPT(threads_offset, 0);
    EXPECT_CORRUPT(threads_offset, good.header_size - 1);
    EXPECT_CORRUPT(threads_offset, good.segment_size - 1);
    EXPECT_CORRUPT(threads_offset, good.segment_size);
    EXPECT_CORRUPT(threads_offset, UINT64_MAX);
    EXPECT_CORRUPT(threads_offset, UINT64_MAX - 60);
    EXPECT_CORRUPT(greenlets_offset, 8);
    EXPECT_CORRUPT(greenlets_offset, good.segment_size - 100);
    EXPECT_CORRUPT(greenlets_offset, UINT64_MAX - 135);
    EXPECT_CORRUPT(greenlets_offset, (uint64_t)1 << 63);
    EXPECT_CORRUPT(strings_offset, good.segment_size - 1);
    EXPECT_CORRUPT(strings_offset, UINT64_MAX);
    EXPECT_CORRUPT(strings_offset, 100);
    EXPECT_CORRUPT(strings_size, good.strings_size + 1);
    EXPECT_CORRUPT(strings_size, UINT64_MAX);
    EXPECT_CORRUPT(strings_size, UINT64_MAX - good.strings_offset + 1);
    /* More records than the segment can hold. */
    EXPECT_CORRUPT(thread_count, UINT32_MAX);
    EXPECT_CORRUPT(thread_count, good.segment_size / 72 + 1);
    EXPECT_CORRUPT(greenlet_count, UINT32_MAX);
    EXPECT_CORRUPT(greenlet_count, good.segment_size / 136 + 1);

    /* An empty array may be anywhere: nothing is read from it. */
    SET_FIELD(image, thread_count, 0);
    SET_FIELD(image, threads_offset, UINT64_MAX);
    SET_FIELD(image, greenlet_count, 0);
    SET_FIELD(image, greenlets_offset, 0);
    CHECK_EQ(parse_code(image, size), 0);
    free(image);
}

TEST(monitor_parse_refuses_strings_outside_their_area)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    gl_monitor_header header = header_of(image);
    gl_monitor_greenlet good = greenlet_of(image, 0);
    const gl_monitor_string bad[] = {
        {(uint32_t)header.strings_size, 1},
        {(uint32_t)header.strings_size - 1, 2},
        {0, (uint32_t)header.strings_size + 1},
        {UINT32_MAX, 1},
        {1, UINT32_MAX},
        {UINT32_MAX, UINT32_MAX},
        {0, GL_MONITOR_MAX_STRING_BYTES + 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int field = 0; field < 5; field++) {
            gl_monitor_greenlet record = good;
            gl_monitor_string *strings[5] = {&record.name, &record.function,
                                             &record.file,
                                             &record.spawn_function,
                                             &record.spawn_file};
            *strings[field] = bad[i];
            put_greenlet(image, 0, &record);
            CHECK_EQ(parse_code(image, size), GL_ECORRUPT);
        }
        put_greenlet(image, 0, &good);
        gl_monitor_thread thread;
        memcpy(&thread, image + header.threads_offset, sizeof thread);
        gl_monitor_string name = thread.name;
        thread.name = bad[i];
        memcpy(image + header.threads_offset, &thread, sizeof thread);
        CHECK_EQ(parse_code(image, size), GL_ECORRUPT);
        thread.name = name;
        memcpy(image + header.threads_offset, &thread, sizeof thread);
    }
    /* Length 0 is an absent string, whatever its offset; the last byte of
     * the area is a string of its own. */
    gl_monitor_greenlet record = good;
    record.name = (gl_monitor_string){UINT32_MAX, 0};
    record.file = (gl_monitor_string){(uint32_t)header.strings_size - 1, 1};
    put_greenlet(image, 0, &record);
    check_parses_as_image(image, size);
    free(image);
}

TEST(monitor_parse_limits_string_length)
{
    /* An image whose strings area is followed by 5000 more bytes. */
    size_t size;
    unsigned char *small = build(&usual_shape, &size);
    unsigned char *image = calloc(1, size + 5000);
    CHECK(image != NULL);
    memcpy(image, small, size);
    free(small);
    for (size_t i = 0; i < 5000; i++)
        image[size + i] = (unsigned char)('a' + i % 26);
    gl_monitor_header header = header_of(image);
    SET_FIELD(image, strings_size, header.strings_size + 5000);
    SET_FIELD(image, segment_size, size + 5000);
    size += 5000;

    gl_monitor_greenlet record = greenlet_of(image, 3);
    uint32_t start = (uint32_t)header.strings_size;
    record.function = (gl_monitor_string){start, GL_MONITOR_MAX_STRING_BYTES};
    put_greenlet(image, 3, &record);
    gl_monitor_snapshot *snapshot = NULL;
    CHECK_OK(parse_copy(image, size, &snapshot));
    CHECK_EQ(strlen(snapshot->greenlets[3].function),
             GL_MONITOR_MAX_STRING_BYTES);
    gl_monitor_snapshot_free(snapshot);

    record.function.length++;
    put_greenlet(image, 3, &record);
    CHECK_EQ(parse_code(image, size), GL_ECORRUPT);
    free(image);
}

TEST(monitor_parse_bounds_the_bytes_of_all_strings)
{
    /* Each record may name the same 4096 bytes five times: 13108
     * greenlets of 136 bytes (under 2 MB) would ask for over 256 MiB of
     * string copies. Refused before anything is allocated. */
    const monitor_image_shape shape = {.greenlets = 13108};
    size_t size;
    unsigned char *small = build(&shape, &size);
    unsigned char *image = calloc(1, size + GL_MONITOR_MAX_STRING_BYTES);
    CHECK(image != NULL);
    memcpy(image, small, size);
    free(small);
    memset(image + size, 'x', GL_MONITOR_MAX_STRING_BYTES);
    gl_monitor_header header = header_of(image);
    SET_FIELD(image, strings_size,
              header.strings_size + GL_MONITOR_MAX_STRING_BYTES);
    SET_FIELD(image, segment_size, size + GL_MONITOR_MAX_STRING_BYTES);
    const gl_monitor_string big = {(uint32_t)header.strings_size,
                                   GL_MONITOR_MAX_STRING_BYTES};
    for (uint32_t i = 0; i < shape.greenlets; i++) {
        gl_monitor_greenlet record = greenlet_of(image, i);
        record.name = record.function = record.file = big;
        record.spawn_function = record.spawn_file = big;
        put_greenlet(image, i, &record);
    }
    gl_monitor_snapshot *snapshot = NULL;
    CHECK_EQ(gl_monitor_parse(image, size + GL_MONITOR_MAX_STRING_BYTES,
                              &snapshot),
             GL_ECORRUPT);
    CHECK(snapshot == NULL);
    free(image);
}

TEST(monitor_parse_refuses_unknown_states)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    gl_monitor_greenlet record = greenlet_of(image, 6);
    const uint32_t states[] = {4, 5, 0x100, UINT32_MAX};
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
        gl_monitor_greenlet bad = record;
        bad.state = states[i];
        put_greenlet(image, 6, &bad);
        CHECK_EQ(parse_code(image, size), GL_ECORRUPT);
    }
    /* Unknown flag bits and a nonzero `exited` of any value are read as
     * the bits and truth they carry. */
    record.flags |= 0xfff0;
    put_greenlet(image, 6, &record);
    gl_monitor_thread thread;
    gl_monitor_header header = header_of(image);
    memcpy(&thread, image + header.threads_offset, sizeof thread);
    thread.exited = 7;
    memcpy(image + header.threads_offset, &thread, sizeof thread);
    check_parses_as_image(image, size);
    free(image);
}

TEST(monitor_parse_replaces_control_characters)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    gl_monitor_header header = header_of(image);
    /* Overwrite the start of the strings area (greenlet 0's name
     * "greenlet-0" and the thread names before it). */
    const char nasty[] = "\x1b[2J\x01\t\n\x7f\0\xc3\xa9!";
    memcpy(image + header.strings_offset, nasty, sizeof nasty - 1);
    gl_monitor_thread thread;
    memcpy(&thread, image + header.threads_offset, sizeof thread);
    thread.name = (gl_monitor_string){0, sizeof nasty - 1};
    memcpy(image + header.threads_offset, &thread, sizeof thread);
    char runtime[48] = "Py\x1bthon\x7f";
    memcpy(runtime + 20, "after the terminator", 20);
    memcpy(image + offsetof(gl_monitor_header, runtime), runtime, 48);

    gl_monitor_snapshot *snapshot = NULL;
    CHECK_OK(parse_copy(image, size, &snapshot));
    CHECK(strcmp(snapshot->threads[0].name, "?[2J?????\xc3\xa9!") == 0);
    CHECK(strcmp(snapshot->runtime, "Py?thon?") == 0);
    gl_monitor_snapshot_free(snapshot);

    /* A runtime name of all 48 bytes, unterminated, is kept whole. */
    memset(image + offsetof(gl_monitor_header, runtime), 'r', 48);
    CHECK_OK(parse_copy(image, size, &snapshot));
    CHECK_EQ(strlen(snapshot->runtime), 48);
    gl_monitor_snapshot_free(snapshot);
    free(image);
}

TEST(monitor_parse_refuses_every_truncation_of_a_good_image)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    /* Cut short, with the header still claiming the whole publication. */
    for (size_t length = 0; length < size; length++)
        if (parse_code(image, length) != GL_ECORRUPT)
            test_fail(__FILE__, __LINE__, "a prefix of %zu bytes of %zu "
                      "was not refused as corrupt", length, size);
    /* Cut short, with segment_size saying so: the arrays no longer fit. */
    gl_monitor_header header = header_of(image);
    for (size_t length = header.header_size; length < size; length++) {
        SET_FIELD(image, segment_size, length);
        if (parse_code(image, length) != GL_ECORRUPT)
            test_fail(__FILE__, __LINE__, "a publication cut to %zu bytes "
                      "of %zu was not refused as corrupt", length, size);
    }
    SET_FIELD(image, segment_size, size);
    CHECK_EQ(parse_code(image, size), 0);
    free(image);
}

/* Every file of the fuzzer's corpus (seeds and inputs that once crashed
 * it) parses or fails with a code of the table, under every build of the
 * suite (ASan+UBSan, valgrind). GL_TEST_CORPUS_DIR overrides the place. */
TEST(monitor_parse_survives_the_fuzz_corpus)
{
    const char *path = getenv("GL_TEST_CORPUS_DIR");
    if (!path)
        path = "tests/corpus/monitor";
    DIR *directory = opendir(path);
    if (!directory)
        test_fail(__FILE__, __LINE__, "no corpus at %s (run from the "
                  "repository's root, or set GL_TEST_CORPUS_DIR)", path);
    unsigned files = 0, parsed = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        char name[4096];
        snprintf(name, sizeof name, "%s/%s", path, entry->d_name);
        struct stat status;
        if (stat(name, &status) < 0 || !S_ISREG(status.st_mode))
            continue;
        FILE *file = fopen(name, "rb");
        CHECK(file != NULL);
        size_t size = (size_t)status.st_size;
        unsigned char *bytes = malloc(size ? size : 1);
        CHECK(bytes != NULL);
        CHECK_EQ(fread(bytes, 1, size, file), size);
        fclose(file);
        gl_monitor_snapshot *snapshot = NULL;
        int code = gl_monitor_parse(bytes, size, &snapshot);
        free(bytes);
        if (code != 0 && strcmp(gl_error_name(code), "GL_EUNKNOWN") == 0)
            test_fail(__FILE__, __LINE__, "%s: code %d", name, code);
        if (code == 0) {
            size_t characters = strlen(snapshot->runtime);
            for (size_t i = 0; i < snapshot->thread_count; i++)
                characters += strlen(snapshot->threads[i].name);
            for (size_t i = 0; i < snapshot->greenlet_count; i++) {
                const gl_monitor_greenlet_view *view = &snapshot->greenlets[i];
                CHECK(view->state <= GL_STATE_DEAD);
                characters += strlen(view->name) + strlen(view->function) +
                              strlen(view->file) +
                              strlen(view->spawn_function) +
                              strlen(view->spawn_file);
            }
            CHECK(characters <= (size_t)GL_MONITOR_MAX_SEGMENT_BYTES);
            gl_monitor_snapshot_free(snapshot);
            parsed++;
        }
        files++;
    }
    closedir(directory);
    CHECK(files >= 5);
    CHECK(parsed >= 3); /* the seeds */
}

/* ------------------------------------------ children playing publisher */

/* What a child does once its segment is in place. */
typedef enum child_role {
    CHILD_IDLE,             /* nothing: a process between publications */
    CHILD_ANSWERS,          /* answers requests, polling every ms */
    CHILD_ANSWERS_TOO_MUCH, /* answers with a size beyond the capacity */
    CHILD_PUBLISHES_ON_WAKE,/* sleeps on the wake futex, publishes when woken */
    CHILD_WITHOUT_SEGMENT,  /* makes no memfd at all */
    CHILD_OTHER_MEMFD,      /* a memfd of another name */
    CHILD_MAIN_THREAD_EXITS /* told to, its main thread leaves another */
} child_role;

typedef struct child {
    pid_t pid;
    int fd_number; /* of its memfd, in the child */
    int command;   /* a pipe to it: a byte tells it to do its part */
} child;

#define ANSWER_TEXT_FORMAT                                                    \
    "python\tfunction_%llu\tapp.py\t12\n"                                     \
    "native\tgl_switch\t0x1c\tlibglengine.so\t0x7f0012345678\n"               \
    "note\tkinds %u \x1b[31mred\x07\n"

static void child_answers(volatile gl_monitor_header *header,
                          unsigned char *segment, int honestly)
{
    uint64_t answered = 0; /* as built; a request may come before we look */
    for (;;) {
        uint64_t ticket = __atomic_load_n(&header->request_ticket,
                                          __ATOMIC_ACQUIRE);
        if (ticket != answered) {
            uint64_t id = header->request_greenlet_id;
            unsigned kinds = header->request_kinds;
            char text[256];
            int length = snprintf(text, sizeof text, ANSWER_TEXT_FORMAT,
                                  (unsigned long long)id, kinds);
            uint64_t sequence = header->answer_sequence;
            __atomic_store_n(&header->answer_sequence, sequence + 1,
                             __ATOMIC_RELEASE);
            memcpy(segment + header->answer_offset, text, (size_t)length);
            header->answer_ticket = ticket;
            header->answer_greenlet_id = id;
            header->answer_status = id == 999
                                        ? GL_MONITOR_ANSWER_NO_SUCH_GREENLET
                                        : GL_MONITOR_ANSWER_OK;
            header->answer_size = honestly
                                      ? (uint32_t)length
                                      : (uint32_t)header->answer_capacity + 1;
            __atomic_store_n(&header->answer_sequence, sequence + 2,
                             __ATOMIC_RELEASE);
            answered = ticket;
        }
        usleep(1000);
    }
}

static void child_publishes_on_wake(volatile gl_monitor_header *header)
{
    uint32_t seen = 0; /* as built; a reader may wake us before we look */
    for (;;) {
        struct timespec patience = {30, 0};
        syscall(SYS_futex, &header->wake, FUTEX_WAIT, seen, &patience, NULL,
                0);
        uint32_t wake = __atomic_load_n(&header->wake, __ATOMIC_ACQUIRE);
        if (wake == seen)
            continue;
        seen = wake;
        uint64_t sequence = header->publish_sequence;
        __atomic_store_n(&header->publish_sequence, sequence + 1,
                         __ATOMIC_RELEASE);
        header->publications++;
        header->published_ns = now_ns();
        __atomic_store_n(&header->publish_sequence, sequence + 2,
                         __ATOMIC_RELEASE);
    }
}

/* Blocks until the process is killed: no signal here has a handler. */
static void *pause_forever(void *argument)
{
    pause();
    return argument;
}

/* The main thread exits when told to; the process lives on in another. */
static void child_main_thread_exits(int command)
{
    pthread_t other;
    char byte;
    if (pthread_create(&other, NULL, pause_forever, NULL) != 0 ||
        read(command, &byte, 1) != 1)
        _exit(6);
    pthread_exit(NULL);
}

static void child_main(const unsigned char *image, size_t size,
                       child_role role, int ready, int command)
{
    int fd = -1;
    if (role != CHILD_WITHOUT_SEGMENT) {
        fd = memfd_create(role == CHILD_OTHER_MEMFD ? "greenlet-monitor-2"
                                                    : GL_MONITOR_MEMFD_NAME,
                          MFD_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
            pwrite(fd, image, size, 0) != (ssize_t)size)
            _exit(3);
    }
    void *mapping = NULL;
    if (role == CHILD_ANSWERS || role == CHILD_ANSWERS_TOO_MUCH ||
        role == CHILD_PUBLISHES_ON_WAKE) {
        mapping = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (mapping == MAP_FAILED)
            _exit(4);
    }
    if (write(ready, &fd, sizeof fd) != sizeof fd)
        _exit(5);
    close(ready);
    if (role == CHILD_ANSWERS || role == CHILD_ANSWERS_TOO_MUCH)
        child_answers(mapping, mapping, role == CHILD_ANSWERS);
    if (role == CHILD_PUBLISHES_ON_WAKE)
        child_publishes_on_wake(mapping);
    if (role == CHILD_MAIN_THREAD_EXITS)
        child_main_thread_exits(command);
    for (;;)
        pause();
}

/* Forks a child that publishes `image` in its role; it dies with us. */
static child start_child(const unsigned char *image, size_t size,
                         child_role role)
{
    int ready[2], command[2];
    CHECK(pipe(ready) == 0 && pipe(command) == 0);
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(0);
        close(ready[0]);
        close(command[1]);
        child_main(image, size, role, ready[1], command[0]);
    }
    close(ready[1]);
    close(command[0]);
    child started = {pid, -1, command[1]};
    CHECK_EQ(read(ready[0], &started.fd_number, sizeof started.fd_number),
             sizeof started.fd_number);
    close(ready[0]);
    return started;
}

static void stop_child(child *process)
{
    kill(process->pid, SIGKILL);
    CHECK_EQ(waitpid(process->pid, NULL, 0), process->pid);
    close(process->command);
}

/* Our own descriptor of a child's segment, to change it behind the
 * reader's back. */
static int open_child_segment(const child *process)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)process->pid,
             process->fd_number);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    CHECK(fd >= 0);
    return fd;
}

static gl_monitor_header header_in_file(int fd)
{
    gl_monitor_header header;
    CHECK_EQ(pread(fd, &header, sizeof header, 0), sizeof header);
    return header;
}

#define WRITE_FIELD(fd, field, value)                                         \
    do {                                                                      \
        __typeof__(((gl_monitor_header *)0)->field) write_value_ = (value);   \
        CHECK_EQ(pwrite((fd), &write_value_, sizeof write_value_,             \
                        offsetof(gl_monitor_header, field)),                  \
                 sizeof write_value_);                                        \
    } while (0)

static int list_holds(const int64_t *pids, size_t count, int64_t pid)
{
    for (size_t i = 0; i < count; i++)
        if (pids[i] == pid)
            return 1;
    return 0;
}

/* ----------------------------------------------- discovery and opening */

TEST(monitor_finds_and_reads_publishing_children)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child first = start_child(image, size, CHILD_IDLE);
    child second = start_child(image, size, CHILD_IDLE);
    child without = start_child(image, size, CHILD_WITHOUT_SEGMENT);
    child other = start_child(image, size, CHILD_OTHER_MEMFD);

    int64_t pids[256];
    size_t count = 0;
    CHECK_OK(gl_monitor_find_processes(pids, 256, &count));
    CHECK(count >= 2 && count <= 256);
    CHECK(list_holds(pids, count, first.pid));
    CHECK(list_holds(pids, count, second.pid));
    CHECK(!list_holds(pids, count, without.pid));
    CHECK(!list_holds(pids, count, other.pid));
    for (size_t i = 1; i < count; i++)
        CHECK(pids[i - 1] < pids[i]);

    /* Fewer places than processes: the smallest pids, and the count of
     * all; none at all: only the count. */
    int64_t one[1] = {0};
    size_t count_again = 0;
    CHECK_OK(gl_monitor_find_processes(one, 1, &count_again));
    CHECK(count_again >= 2);
    CHECK(one[0] <= (first.pid < second.pid ? first.pid : second.pid));
    CHECK_OK(gl_monitor_find_processes(NULL, 0, &count_again));
    CHECK(count_again >= 2);
    CHECK_EQ(gl_monitor_find_processes(NULL, 1, &count_again), GL_EINVAL);
    CHECK_EQ(gl_monitor_find_processes(pids, 1, NULL), GL_EINVAL);

    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, first.pid));
    int freshness = -1;
    gl_monitor_snapshot *snapshot = NULL;
    CHECK_OK(gl_monitor_read(reader, 0, &freshness, &snapshot));
    CHECK_EQ(freshness, 0);
    check_matches_image(snapshot, image);
    gl_monitor_snapshot_free(snapshot);
    /* A second read reuses the reader's copy. */
    CHECK_OK(gl_monitor_read(reader, 0, NULL, &snapshot));
    check_matches_image(snapshot, image);
    gl_monitor_snapshot_free(snapshot);
    gl_monitor_close(reader);
    gl_monitor_close(NULL);

    stop_child(&first);
    stop_child(&second);
    stop_child(&without);
    stop_child(&other);
    free(image);
}

TEST(monitor_open_reports_processes_that_do_not_exist)
{
    gl_monitor_reader *reader = (gl_monitor_reader *)&reader;
    CHECK_EQ(gl_monitor_open(&reader, 0), GL_ENOPROCESS);
    CHECK(reader == NULL);
    CHECK_EQ(gl_monitor_open(&reader, -1), GL_ENOPROCESS);
    CHECK_EQ(gl_monitor_open(&reader, INT64_MAX), GL_ENOPROCESS);
    /* A pid above the kernel's largest can never be in use. */
    FILE *limit = fopen("/proc/sys/kernel/pid_max", "r");
    CHECK(limit != NULL);
    long long pid_max = 0;
    CHECK_EQ(fscanf(limit, "%lld", &pid_max), 1);
    fclose(limit);
    CHECK_EQ(gl_monitor_open(&reader, pid_max + 1), GL_ENOPROCESS);
    CHECK_EQ(gl_monitor_open(NULL, getpid()), GL_EINVAL);
}

TEST(monitor_open_reports_processes_without_a_segment)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child without = start_child(image, size, CHILD_WITHOUT_SEGMENT);
    child other = start_child(image, size, CHILD_OTHER_MEMFD);
    gl_monitor_reader *reader = NULL;
    CHECK_EQ(gl_monitor_open(&reader, without.pid), GL_ENOMONITOR);
    CHECK_EQ(gl_monitor_open(&reader, other.pid), GL_ENOMONITOR);
    CHECK(reader == NULL);
    stop_child(&without);
    stop_child(&other);
    free(image);
}

TEST(monitor_open_checks_the_segments_header)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    gl_monitor_reader *reader = NULL;

    image[0] = 'X';
    child wrong_magic = start_child(image, size, CHILD_IDLE);
    CHECK_EQ(gl_monitor_open(&reader, wrong_magic.pid), GL_ENOMONITOR);
    stop_child(&wrong_magic);
    image[0] = 'G';

    SET_FIELD(image, layout_version, 2);
    child newer = start_child(image, size, CHILD_IDLE);
    CHECK_EQ(gl_monitor_open(&reader, newer.pid), GL_EVERSION);
    stop_child(&newer);
    SET_FIELD(image, layout_version, GL_MONITOR_LAYOUT_VERSION);

    child short_file = start_child(image, 100, CHILD_IDLE);
    CHECK_EQ(gl_monitor_open(&reader, short_file.pid), GL_ECORRUPT);
    stop_child(&short_file);

    SET_FIELD(image, greenlet_record_size, 8);
    child small_records = start_child(image, size, CHILD_IDLE);
    CHECK_EQ(gl_monitor_open(&reader, small_records.pid), GL_ECORRUPT);
    stop_child(&small_records);
    CHECK(reader == NULL);
    free(image);
}

/* As root, a child that gives up root for nobody must be refused; as
 * another user, init's process (root's) is refused the same way. */
TEST(monitor_open_is_refused_for_another_users_process)
{
    if (getuid() != 0) {
        gl_monitor_reader *reader = NULL;
        if (access("/proc/1/fd", R_OK) != 0)
            CHECK_EQ(gl_monitor_open(&reader, 1), GL_EPERM);
        return;
    }
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_IDLE);
    free(image);
    fflush(NULL);
    pid_t looker = fork();
    CHECK(looker >= 0);
    if (looker == 0) {
        if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
            _exit(2);
        gl_monitor_reader *reader = NULL;
        int code = gl_monitor_open(&reader, publisher.pid);
        if (code != GL_EPERM)
            _exit(10 - code);
        int64_t pids[64];
        size_t count;
        if (gl_monitor_find_processes(pids, 64, &count) != 0)
            _exit(30);
        if (list_holds(pids, count < 64 ? count : 64, publisher.pid))
            _exit(31);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(looker, &status, 0), looker);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    stop_child(&publisher);
}

/* ------------------------------------------------------------- reading */

TEST(monitor_read_reports_a_process_that_has_gone)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_IDLE);
    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, publisher.pid));
    stop_child(&publisher);
    gl_monitor_snapshot *snapshot = NULL;
    CHECK_EQ(gl_monitor_read(reader, 0, NULL, &snapshot), GL_ENOPROCESS);
    CHECK_EQ(gl_monitor_read(reader, 100, NULL, &snapshot), GL_ENOPROCESS);
    CHECK(snapshot == NULL);
    CHECK_EQ(gl_monitor_attach(reader), GL_ENOPROCESS);
    char *text;
    size_t length;
    int status;
    CHECK_EQ(gl_monitor_request(reader, 100, GL_MONITOR_REQUEST_PYTHON_STACK,
                                100, &text, &length, &status),
             GL_ENOPROCESS);
    gl_monitor_close(reader);
    free(image);
}

/* A process whose main thread has exited shows as a zombie in /proc, but
 * lives on in its other threads, and its segment with it. */
TEST(monitor_read_outlives_the_main_thread_of_the_process)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_MAIN_THREAD_EXITS);
    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, publisher.pid));
    CHECK_EQ(write(publisher.command, "x", 1), 1);
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)publisher.pid);
    int zombie = 0;
    for (int i = 0; i < 1000 && !zombie; i++) {
        FILE *file = fopen(path, "r");
        CHECK(file != NULL);
        size_t length = fread(line, 1, sizeof line - 1, file);
        fclose(file);
        line[length] = '\0';
        zombie = strstr(line, ") Z ") != NULL;
        if (!zombie)
            sleep_ms(5);
    }
    CHECK(zombie);
    gl_monitor_snapshot *snapshot = NULL;
    CHECK_OK(gl_monitor_read(reader, 0, NULL, &snapshot));
    check_matches_image(snapshot, image);
    gl_monitor_snapshot_free(snapshot);
    stop_child(&publisher);
    CHECK_EQ(gl_monitor_read(reader, 0, NULL, &snapshot), GL_ENOPROCESS);
    gl_monitor_close(reader);
    free(image);
}

TEST(monitor_attach_writes_the_heartbeat_and_wakes)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_IDLE);
    int segment = open_child_segment(&publisher);
    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, publisher.pid));
    uint64_t before = now_ns();
    CHECK_OK(gl_monitor_attach(reader));
    gl_monitor_header header = header_in_file(segment);
    CHECK(header.reader_heartbeat_ns >= before);
    CHECK(header.reader_heartbeat_ns <= now_ns());
    CHECK_EQ(header.wake, 1);
    CHECK_OK(gl_monitor_attach(reader));
    CHECK_EQ(header_in_file(segment).wake, 2);
    /* Nothing else changed: the reader writes the reader area only. */
    header = header_in_file(segment);
    CHECK(memcmp(&header, image, offsetof(gl_monitor_header,
                                          reader_heartbeat_ns)) == 0);
    unsigned char rest[4096];
    CHECK_EQ(pread(segment, rest, size - sizeof header, sizeof header),
             size - sizeof header);
    CHECK(memcmp(rest, image + sizeof header, size - sizeof header) == 0);
    gl_monitor_close(reader);
    close(segment);
    stop_child(&publisher);
    free(image);
}

TEST(monitor_read_waits_for_a_fresh_publication)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_PUBLISHES_ON_WAKE);
    sleep_ms(50); /* let it fall asleep on the futex */
    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, publisher.pid));
    /* The child sleeps 30 s on the futex: only our FUTEX_WAKE (through
     * our mapping of its file) gets a publication within the time. */
    int within_ms = (int)test_timeout_seconds(5) * 1000;
    for (uint64_t expected = MONITOR_IMAGE_PUBLICATIONS + 1;
         expected <= MONITOR_IMAGE_PUBLICATIONS + 3; expected++) {
        uint64_t before = now_ns();
        int freshness = -1;
        gl_monitor_snapshot *snapshot = NULL;
        CHECK_OK(gl_monitor_read(reader, within_ms, &freshness, &snapshot));
        CHECK_EQ(freshness, 0);
        CHECK_EQ(snapshot->publications, expected);
        CHECK(snapshot->published_ns >= before);
        CHECK_EQ(snapshot->greenlet_count, usual_shape.greenlets);
        gl_monitor_snapshot_free(snapshot);
    }
    gl_monitor_close(reader);
    stop_child(&publisher);
    free(image);
}

TEST(monitor_read_without_a_fresh_publication_gives_the_last)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_IDLE);
    int segment = open_child_segment(&publisher);
    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, publisher.pid));
    uint64_t start = now_ms();
    int freshness = 0;
    gl_monitor_snapshot *snapshot = NULL;
    CHECK_OK(gl_monitor_read(reader, 150, &freshness, &snapshot));
    CHECK(now_ms() - start >= 150);
    CHECK_EQ(freshness, GL_ETIMEDOUT);
    check_matches_image(snapshot, image);
    gl_monitor_snapshot_free(snapshot);
    /* It did attach. */
    gl_monitor_header header = header_in_file(segment);
    CHECK(header.reader_heartbeat_ns != 0);
    CHECK_EQ(header.wake, 1);
    /* A publication counted as new but taken before the attach is not
     * fresh either. */
    WRITE_FIELD(segment, publications, 99);
    CHECK_OK(gl_monitor_read(reader, 50, &freshness, &snapshot));
    CHECK_EQ(freshness, GL_ETIMEDOUT);
    CHECK_EQ(snapshot->publications, 99);
    gl_monitor_snapshot_free(snapshot);
    /* A segment never published (made empty, waiting for its first
     * reader) is no view of the process: no publication, not zeros. */
    WRITE_FIELD(segment, publications, 0);
    CHECK_EQ(gl_monitor_read(reader, 0, NULL, &snapshot), GL_ETIMEDOUT);
    CHECK_EQ(gl_monitor_read(reader, 50, &freshness, &snapshot),
             GL_ETIMEDOUT);
    CHECK(snapshot == NULL);
    gl_monitor_close(reader);
    close(segment);
    stop_child(&publisher);
    free(image);
}

struct delayed_write {
    int fd;
    unsigned delay_ms;
    uint64_t sequence;
};

static void *finish_publication_later(void *argument)
{
    struct delayed_write *work = argument;
    sleep_ms(work->delay_ms);
    WRITE_FIELD(work->fd, publish_sequence, work->sequence);
    return NULL;
}

TEST(monitor_read_retries_while_a_publication_is_written)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_IDLE);
    int segment = open_child_segment(&publisher);
    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, publisher.pid));

    /* Odd for 100 ms, then even: the read waits for it. */
    WRITE_FIELD(segment, publish_sequence, MONITOR_IMAGE_SEQUENCE + 1);
    struct delayed_write work = {segment, 100, MONITOR_IMAGE_SEQUENCE + 2};
    pthread_t writer;
    CHECK_EQ(pthread_create(&writer, NULL, finish_publication_later, &work),
             0);
    uint64_t start = now_ms();
    gl_monitor_snapshot *snapshot = NULL;
    CHECK_OK(gl_monitor_read(reader, 0, NULL, &snapshot));
    CHECK(now_ms() - start >= 90);
    CHECK_EQ(pthread_join(writer, NULL), 0);
    check_matches_image(snapshot, image);
    gl_monitor_snapshot_free(snapshot);

    /* Odd for good: given up after a bounded time. */
    WRITE_FIELD(segment, publish_sequence, MONITOR_IMAGE_SEQUENCE + 3);
    start = now_ms();
    CHECK_EQ(gl_monitor_read(reader, 0, NULL, &snapshot), GL_ETIMEDOUT);
    CHECK(snapshot == NULL);
    CHECK(now_ms() - start < 1000 * (uint64_t)test_timeout_seconds(5));

    /* A whole publication claiming more than the limit is corrupt at
     * once; one that parses badly too. */
    WRITE_FIELD(segment, publish_sequence, MONITOR_IMAGE_SEQUENCE + 4);
    WRITE_FIELD(segment, segment_size,
                (uint64_t)GL_MONITOR_MAX_SEGMENT_BYTES + 1);
    CHECK_EQ(gl_monitor_read(reader, 0, NULL, &snapshot), GL_ECORRUPT);
    WRITE_FIELD(segment, segment_size, size);
    WRITE_FIELD(segment, greenlet_count, 1000);
    CHECK_EQ(gl_monitor_read(reader, 0, NULL, &snapshot), GL_ECORRUPT);
    gl_monitor_close(reader);
    close(segment);
    stop_child(&publisher);
    free(image);
}

TEST(monitor_reader_survives_its_segment_cut_short)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_IDLE);
    int segment = open_child_segment(&publisher);
    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, publisher.pid));
    gl_monitor_snapshot *snapshot = NULL;
    char *text = NULL;
    size_t length;
    int status;

    /* Shorter than the publication says: never a whole copy. */
    CHECK(ftruncate(segment, (off_t)(size / 2)) == 0);
    CHECK_EQ(gl_monitor_read(reader, 0, NULL, &snapshot), GL_ETIMEDOUT);
    CHECK_OK(gl_monitor_attach(reader));

    /* Shorter than the header, then empty: nothing to read, and nothing
     * written that would make the file grow again. */
    const off_t cuts[] = {sizeof(gl_monitor_header) - 1, 0};
    for (size_t i = 0; i < 2; i++) {
        CHECK(ftruncate(segment, cuts[i]) == 0);
        CHECK_EQ(gl_monitor_read(reader, 0, NULL, &snapshot), GL_ETIMEDOUT);
        CHECK_EQ(gl_monitor_read(reader, 50, NULL, &snapshot), GL_ETIMEDOUT);
        CHECK_EQ(gl_monitor_attach(reader), GL_ECORRUPT);
        CHECK_EQ(gl_monitor_request(reader, 100,
                                    GL_MONITOR_REQUEST_NATIVE_STACK, 50,
                                    &text, &length, &status),
                 GL_ECORRUPT);
        struct stat file;
        CHECK(fstat(segment, &file) == 0);
        CHECK_EQ(file.st_size, cuts[i]);
    }
    CHECK(snapshot == NULL && text == NULL);

    /* Written again: read again. */
    CHECK(ftruncate(segment, (off_t)size) == 0);
    CHECK_EQ(pwrite(segment, image, size, 0), size);
    CHECK_OK(gl_monitor_read(reader, 0, NULL, &snapshot));
    check_matches_image(snapshot, image);
    gl_monitor_snapshot_free(snapshot);
    gl_monitor_close(reader);
    close(segment);
    stop_child(&publisher);
    free(image);
}

/* ---------------------------------------------------------- requesting */

TEST(monitor_request_is_answered_by_the_process)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_ANSWERS);
    int segment = open_child_segment(&publisher);
    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, publisher.pid));
    int timeout_ms = (int)test_timeout_seconds(5) * 1000;

    char *text = NULL;
    size_t length = 0;
    int status = -1;
    const unsigned both =
        GL_MONITOR_REQUEST_PYTHON_STACK | GL_MONITOR_REQUEST_NATIVE_STACK;
    CHECK_OK(gl_monitor_request(reader, 105, both, timeout_ms, &text, &length,
                                &status));
    CHECK_EQ(status, GL_MONITOR_ANSWER_OK);
    char expected[256];
    snprintf(expected, sizeof expected, ANSWER_TEXT_FORMAT, 105ull, both);
    /* Tabs and newlines stay; the escape and the bell do not. */
    *strchr(expected, '\x1b') = '?';
    *strchr(expected, '\a') = '?';
    CHECK(strcmp(text, expected) == 0);
    CHECK_EQ(length, strlen(expected));
    free(text);
    gl_monitor_header header = header_in_file(segment);
    CHECK_EQ(header.request_greenlet_id, 105);
    CHECK_EQ(header.request_kinds, both);
    CHECK(header.request_ticket != 0);
    CHECK_EQ(header.answer_ticket, header.request_ticket);
    uint64_t first_ticket = header.request_ticket;

    CHECK_OK(gl_monitor_request(reader, 999, GL_MONITOR_REQUEST_NATIVE_STACK,
                                timeout_ms, &text, &length, &status));
    CHECK_EQ(status, GL_MONITOR_ANSWER_NO_SUCH_GREENLET);
    CHECK(strstr(text, "function_999") != NULL);
    free(text);
    CHECK(header_in_file(segment).request_ticket != first_ticket);
    gl_monitor_close(reader);
    close(segment);
    stop_child(&publisher);
    free(image);
}

TEST(monitor_request_refuses_an_impossible_answer)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_ANSWERS_TOO_MUCH);
    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, publisher.pid));
    char *text = NULL;
    size_t length;
    int status;
    CHECK_EQ(gl_monitor_request(reader, 101, GL_MONITOR_REQUEST_PYTHON_STACK,
                                (int)test_timeout_seconds(5) * 1000, &text,
                                &length, &status),
             GL_ECORRUPT);
    CHECK(text == NULL);
    gl_monitor_close(reader);
    stop_child(&publisher);
    free(image);
}

TEST(monitor_request_times_out_without_an_answer)
{
    size_t size;
    unsigned char *image = build(&usual_shape, &size);
    child publisher = start_child(image, size, CHILD_IDLE);
    gl_monitor_reader *reader = NULL;
    CHECK_OK(gl_monitor_open(&reader, publisher.pid));
    char *text = NULL;
    size_t length;
    int status;
    uint64_t start = now_ms();
    CHECK_EQ(gl_monitor_request(reader, 101, GL_MONITOR_REQUEST_PYTHON_STACK,
                                120, &text, &length, &status),
             GL_ETIMEDOUT);
    uint64_t took = now_ms() - start;
    CHECK(took >= 120 && took < 1000 * (uint64_t)test_timeout_seconds(2));
    CHECK(text == NULL);

    /* Arguments it cannot use. */
    const unsigned python = GL_MONITOR_REQUEST_PYTHON_STACK;
    CHECK_EQ(gl_monitor_request(reader, 1, 0, 100, &text, &length, &status),
             GL_EINVAL);
    CHECK_EQ(gl_monitor_request(reader, 1, 16, 100, &text, &length, &status),
             GL_EINVAL); /* unknown */
    CHECK_EQ(gl_monitor_request(reader, 1, GL_MONITOR_REQUEST_WATCH, 100,
                                &text, &length, &status),
             GL_EINVAL); /* a watch without the audit */
    CHECK_EQ(gl_monitor_request(reader, 1, python, 0, &text, &length,
                                &status),
             GL_EINVAL);
    CHECK_EQ(gl_monitor_request(reader, 1, python, 100, NULL, &length,
                                &status),
             GL_EINVAL);
    CHECK_EQ(gl_monitor_request(NULL, 1, python, 100, &text, &length,
                                &status),
             GL_EINVAL);
    gl_monitor_close(reader);
    stop_child(&publisher);
    free(image);
}
#endif /* GL_TEST_HAVE_INSPECT */
