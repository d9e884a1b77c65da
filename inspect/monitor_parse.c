/*
 * monitor_parse.c -- turns a copied monitor segment image into a snapshot
 * (gl_monitor_parse), trusting nothing in it.
 *
 * The image comes from another process, which may be buggy or hostile, so
 * every field is checked before it is used: the constant header first
 * (gl__monitor_check_header, also used by gl_monitor_open), then the
 * publication. All arithmetic on offsets and sizes is done so that it
 * cannot wrap, and every read is a memcpy of a range proven to lie inside
 * the image, so the image needs no alignment.
 *
 *   [0, header_size)                        the header
 *   [threads_offset, + count * record_size) each inside
 *   [greenlets_offset, ...)                 [header_size, segment_size),
 *   [strings_offset, + strings_size)        and segment_size <= image size
 *
 * Records larger than version 1's (header_size, thread_record_size or
 * greenlet_record_size bigger than the structs) are read as a compatible
 * extension: the known prefix of each record is used, records are strided
 * by the size given. Smaller ones are corrupt.
 *
 * The snapshot is one allocation, laid out as
 *
 *   gl_monitor_snapshot | thread views | greenlet views | string bytes
 *
 * so gl_monitor_snapshot_free is one free(). Strings are copied with a NUL
 * after each, control characters (bytes below 0x20, and 0x7f) replaced by
 * '?'; absent strings point at a shared "". The sum of string lengths is
 * bounded by GL_MONITOR_MAX_SEGMENT_BYTES: records may reference the same
 * bytes many times over, and without a bound a small image could ask for
 * an allocation a hundred times its size.
 *
 * References to the same bytes share one copy, as far as a small cache
 * of recent references finds them (copied_string below). The publisher
 * interns its strings, so the thousands of greenlets suspended in one
 * function all refer to one function name and one file: with the 100,000
 * greenlets of bench/many_greenlets.py, 0.14 MB of strings are copied
 * instead of 6.4 MB (parsing takes 4 ms instead of 7.5), and gltop can
 * compare such strings by pointer. The bound above still counts every
 * reference, so what is accepted does not depend on the cache.
 *
 * Cost: O(image size); the records are walked twice, once to check and
 * measure, once to copy (the same code, so the two cannot disagree). The
 * second walk checks again what it copies, so even an image that changes
 * during the call (a caller handing in shared memory) can cost no more
 * than GL_ECORRUPT.
 */
#include "glmonitor.h"
#include "monitor_internal.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(gl_monitor_snapshot) % _Alignof(gl_monitor_thread_view) == 0,
               "thread views follow the snapshot, aligned");
_Static_assert(sizeof(gl_monitor_thread_view) % _Alignof(gl_monitor_greenlet_view) == 0,
               "greenlet views follow the thread views, aligned");

int gl__monitor_check_header(const void *image, size_t size,
                             gl_monitor_header *header)
{
    const size_t magic_size = sizeof header->magic;
    const size_t version_end = offsetof(gl_monitor_header, layout_version) +
                               sizeof header->layout_version;
    if (size > 0 &&
        memcmp(image, GL_MONITOR_MAGIC, size < magic_size ? size : magic_size))
        return GL_ENOMONITOR;
    if (size < version_end)
        return GL_ECORRUPT;
    uint32_t version;
    memcpy(&version, (const char *)image + offsetof(gl_monitor_header,
                                                    layout_version),
           sizeof version);
    if (version != GL_MONITOR_LAYOUT_VERSION)
        return GL_EVERSION;
    if (size < sizeof *header)
        return GL_ECORRUPT;
    memcpy(header, image, sizeof *header);
    if (header->header_size < sizeof *header ||
        header->thread_record_size < sizeof(gl_monitor_thread) ||
        header->greenlet_record_size < sizeof(gl_monitor_greenlet))
        return GL_ECORRUPT;
    return 0;
}

/* 1 when `count` units of `unit_size` bytes from `offset` lie inside the
 * header's [header_size, segment_size); an empty array may be anywhere.
 * Needs header_size <= segment_size; no arithmetic here can wrap. */
static int array_is_inside(const gl_monitor_header *header, uint64_t offset,
                           uint64_t count, uint64_t unit_size)
{
    if (count == 0)
        return 1;
    if (offset < header->header_size || offset > header->segment_size)
        return 0;
    return count <= (header->segment_size - offset) / unit_size;
}

/* A string reference and its copy; length 0: an empty slot. */
typedef struct copied_string {
    uint32_t offset, length;
    const char *copy; /* NULL in the measuring walk */
} copied_string;

/* Slots of the cache of copies, direct-mapped by offset: a power of two.
 * A miss only costs a copy, so it is small (4 KiB, on the stack). */
#define COPIED_STRING_SLOTS 256u

/* The walk over the records, done twice by gl_monitor_parse: first to
 * check and measure (snapshot NULL: only string_bytes grows), then to fill
 * the snapshot, whose string space starts at string_next and ends at
 * string_end. Both walks start with an empty cache and meet the same
 * references, so they find the same copies: the measure is exact. */
typedef struct parse_walk {
    const unsigned char *image;
    gl_monitor_header header;
    gl_monitor_snapshot *snapshot;
    uint64_t string_lengths; /* sum of lengths, for the bound */
    size_t string_bytes;     /* space the copies take, NULs included */
    char *string_next;
    char *string_end;
    copied_string copied[COPIED_STRING_SLOTS];
} parse_walk;

/* The cache slot of a string at `offset` (Fibonacci hashing: offsets of
 * neighbouring strings land in different slots). */
static copied_string *copied_slot(parse_walk *walk, uint32_t offset)
{
    return &walk->copied[(uint32_t)(offset * 2654435761u) >> 24];
}
_Static_assert(COPIED_STRING_SLOTS == 1u << (32 - 24),
               "copied_slot takes the top 8 bits of the hash");

/* Checks one string reference and, when filling, copies the string, or
 * gives the copy already made of the same reference. *copy is "" for an
 * absent string. GL_ECORRUPT when the reference leaves the strings area,
 * is too long, or the copies would outgrow the bound. */
static int take_string(parse_walk *walk, gl_monitor_string reference,
                       const char **copy)
{
    *copy = "";
    if (reference.length == 0)
        return 0;
    const gl_monitor_header *header = &walk->header;
    if (reference.length > GL_MONITOR_MAX_STRING_BYTES ||
        reference.offset > header->strings_size ||
        reference.length > header->strings_size - reference.offset)
        return GL_ECORRUPT;
    walk->string_lengths += reference.length;
    if (walk->string_lengths > GL_MONITOR_MAX_SEGMENT_BYTES)
        return GL_ECORRUPT;
    copied_string *slot = copied_slot(walk, reference.offset);
    if (slot->length == reference.length && slot->offset == reference.offset) {
        if (walk->snapshot)
            *copy = slot->copy;
        return 0;
    }
    walk->string_bytes += (size_t)reference.length + 1;
    if (!walk->snapshot) {
        *slot = (copied_string){reference.offset, reference.length, NULL};
        return 0;
    }
    if ((size_t)(walk->string_end - walk->string_next) <
        (size_t)reference.length + 1)
        return GL_ECORRUPT; /* the image changed since the first walk */
    const unsigned char *source =
        walk->image + header->strings_offset + reference.offset;
    char *target = walk->string_next;
    for (uint32_t i = 0; i < reference.length; i++) {
        unsigned char byte = source[i];
        target[i] = (byte < 0x20 || byte == 0x7f) ? '?' : (char)byte;
    }
    target[reference.length] = '\0';
    walk->string_next += reference.length + 1;
    *slot = (copied_string){reference.offset, reference.length, target};
    *copy = target;
    return 0;
}

/* Copies the known prefix (`size` bytes) of record `index` of the array
 * at `offset` with stride `record_size`, already checked to lie within
 * the image; memcpy, since the image need not be aligned. */
static void copy_record(const parse_walk *walk, uint64_t offset,
                        uint32_t record_size, uint32_t index, void *record,
                        size_t size)
{
    memcpy(record, walk->image + offset + (size_t)index * record_size, size);
}

static int take_thread(parse_walk *walk, uint32_t index)
{
    const gl_monitor_header *header = &walk->header;
    gl_monitor_thread record;
    copy_record(walk, header->threads_offset, header->thread_record_size,
                index, &record, sizeof record);
    const char *name;
    int code = take_string(walk, record.name, &name);
    if (code || !walk->snapshot)
        return code;
    walk->snapshot->threads[index] = (gl_monitor_thread_view){
        .serial = record.serial,
        .os_id = record.os_id,
        .exited = record.exited != 0,
        .switches = record.switches,
        .current_id = record.current_id,
        .saved_bytes = record.saved_bytes,
        .saved_bytes_peak = record.saved_bytes_peak,
        .greenlets = record.greenlets,
        .name = name,
    };
    return 0;
}

static int take_greenlet(parse_walk *walk, uint32_t index)
{
    const gl_monitor_header *header = &walk->header;
    gl_monitor_greenlet record;
    copy_record(walk, header->greenlets_offset, header->greenlet_record_size,
                index, &record, sizeof record);
    if (record.state > GL_MONITOR_STATE_DEAD)
        return GL_ECORRUPT;
    const char *name, *function, *file, *spawn_function, *spawn_file;
    int code;
    if ((code = take_string(walk, record.name, &name)) ||
        (code = take_string(walk, record.function, &function)) ||
        (code = take_string(walk, record.file, &file)) ||
        (code = take_string(walk, record.spawn_function, &spawn_function)) ||
        (code = take_string(walk, record.spawn_file, &spawn_file)))
        return code;
    if (!walk->snapshot)
        return 0;
    walk->snapshot->greenlets[index] = (gl_monitor_greenlet_view){
        .id = record.id,
        .parent_id = record.parent_id,
        .thread_serial = record.thread_serial,
        .state = (gl_state)record.state,
        .is_main = (record.flags & GL_MONITOR_GREENLET_MAIN) != 0,
        .has_place = (record.flags & GL_MONITOR_GREENLET_PLACE) != 0,
        .has_spawn_site = (record.flags & GL_MONITOR_GREENLET_SPAWN_SITE) != 0,
        .has_hazard = (record.flags & GL_MONITOR_GREENLET_HAZARD) != 0,
        .stack_pointer = record.stack_pointer,
        .stack_stop = record.stack_stop,
        .saved_bytes = record.saved_bytes,
        .saved_bytes_peak = record.saved_bytes_peak,
        .switches = record.switches,
        .created_ns = record.created_ns,
        .last_ran_serial = record.last_ran_serial,
        .line = record.line,
        .spawn_line = record.spawn_line,
        .name = name,
        .function = function,
        .file = file,
        .spawn_function = spawn_function,
        .spawn_file = spawn_file,
    };
    return 0;
}

static int walk_records(parse_walk *walk)
{
    for (uint32_t i = 0; i < walk->header.thread_count; i++) {
        int code = take_thread(walk, i);
        if (code)
            return code;
    }
    for (uint32_t i = 0; i < walk->header.greenlet_count; i++) {
        int code = take_greenlet(walk, i);
        if (code)
            return code;
    }
    return 0;
}

/* The publication's own checks: whole, and every array in its place. */
static int check_publication(const gl_monitor_header *header, size_t size)
{
    if (header->publish_sequence & 1)
        return GL_ECORRUPT; /* caught while being written */
    if (header->segment_size > size ||
        header->segment_size < header->header_size)
        return GL_ECORRUPT;
    if (!array_is_inside(header, header->threads_offset,
                         header->thread_count, header->thread_record_size) ||
        !array_is_inside(header, header->greenlets_offset,
                         header->greenlet_count,
                         header->greenlet_record_size) ||
        !array_is_inside(header, header->strings_offset,
                         header->strings_size, 1))
        return GL_ECORRUPT;
    return 0;
}

/* Copies the runtime's name: up to its first NUL, at most 48 bytes. */
static void copy_runtime(char target[49], const char source[48])
{
    size_t i = 0;
    for (; i < 48 && source[i]; i++) {
        unsigned char byte = (unsigned char)source[i];
        target[i] = (byte < 0x20 || byte == 0x7f) ? '?' : (char)byte;
    }
    target[i] = '\0';
}

int gl_monitor_parse(const void *image, size_t size,
                     gl_monitor_snapshot **out)
{
    if (!out || (!image && size))
        return GL_EINVAL;
    *out = NULL;
    parse_walk walk = {.image = image};
    int code = gl__monitor_check_header(image, size, &walk.header);
    if (code || (code = check_publication(&walk.header, size)) ||
        (code = walk_records(&walk)))
        return code;

    /* Counts are bounded by the image (each record takes dozens of bytes)
     * and the strings by the check above; the sums are checked anyway, for
     * 32-bit size_t. */
    const gl_monitor_header *header = &walk.header;
    size_t threads_bytes, greenlets_bytes, total;
    if (__builtin_mul_overflow((size_t)header->thread_count,
                               sizeof(gl_monitor_thread_view),
                               &threads_bytes) ||
        __builtin_mul_overflow((size_t)header->greenlet_count,
                               sizeof(gl_monitor_greenlet_view),
                               &greenlets_bytes) ||
        __builtin_add_overflow(sizeof(gl_monitor_snapshot), threads_bytes,
                               &total) ||
        __builtin_add_overflow(total, greenlets_bytes, &total) ||
        __builtin_add_overflow(total, walk.string_bytes, &total))
        return GL_ENOMEM;
    char *block = malloc(total);
    if (!block)
        return GL_ENOMEM;

    gl_monitor_snapshot *snapshot = (gl_monitor_snapshot *)block;
    *snapshot = (gl_monitor_snapshot){
        .pid = header->pid,
        .has_places = (header->flags & GL_MONITOR_PUBLICATION_PLACES) != 0,
        .publications = header->publications,
        .published_ns = header->published_ns,
        .process_saved_bytes = header->process_saved_bytes,
        .thread_count = header->thread_count,
        .greenlet_count = header->greenlet_count,
    };
    copy_runtime(snapshot->runtime, header->runtime);
    char *next = block + sizeof *snapshot;
    if (header->thread_count)
        snapshot->threads = (gl_monitor_thread_view *)next;
    next += threads_bytes;
    if (header->greenlet_count)
        snapshot->greenlets = (gl_monitor_greenlet_view *)next;
    next += greenlets_bytes;

    walk.snapshot = snapshot;
    walk.string_next = next;
    walk.string_end = next + walk.string_bytes;
    walk.string_lengths = 0;
    walk.string_bytes = 0;
    memset(walk.copied, 0, sizeof walk.copied);
    code = walk_records(&walk);
    if (code) {
        free(block);
        return code;
    }
    *out = snapshot;
    return 0;
}

void gl_monitor_snapshot_free(gl_monitor_snapshot *snapshot)
{
    free(snapshot);
}
