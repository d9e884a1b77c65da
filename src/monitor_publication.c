/*
 * monitor_publication.c -- one publication of the monitor segment: a copy
 * of the registry, with what the runtime says of each greenlet and thread,
 * laid out as monitor_layout.h says and written under the publish
 * sequence.
 *
 * Everything is built in private memory first (the registry walk may not
 * allocate inside the segment, and readers should see the segment odd for
 * as short a time as possible); then the segment grows if it must, and the
 * records and strings are copied in between the two sequence stores.
 * Strings are interned per publication, so that ten thousand greenlets
 * suspended in the same function and file cost those two strings once.
 *
 * Cost: O(greenlets + threads) per publication, which the monitor's thread
 * pays every GL_MONITOR_REFRESH_MS while a reader is attached, and never
 * otherwise.
 */
#include "monitor.h"

#include <stdlib.h>
#include <string.h>

/* Longest string stored; longer ones keep their end (file paths differ at
 * the end). */
#define STRING_LIMIT 1024u

/* ------------------------------------------------------------- strings */

struct interned {
    uint64_t hash;
    uint32_t offset, length; /* length 0: empty slot */
};

struct strings {
    char *bytes;
    size_t size, capacity;
    struct interned *table;
    size_t table_capacity; /* a power of two, kept at most half full */
    size_t used;
    int failed;
};

static uint64_t hash_text(const char *text, size_t length)
{
    uint64_t hash = 1469598103934665603u; /* FNV-1a */
    for (size_t i = 0; i < length; i++)
        hash = (hash ^ (unsigned char)text[i]) * 1099511628211u;
    return hash;
}

static int grow_table(struct strings *s)
{
    size_t capacity = s->table_capacity ? 2 * s->table_capacity : 256;
    struct interned *table = calloc(capacity, sizeof *table);
    if (!table)
        return -1;
    for (size_t i = 0; i < s->table_capacity; i++) {
        struct interned entry = s->table[i];
        if (!entry.length)
            continue;
        size_t slot = entry.hash & (capacity - 1);
        while (table[slot].length)
            slot = (slot + 1) & (capacity - 1);
        table[slot] = entry;
    }
    free(s->table);
    s->table = table;
    s->table_capacity = capacity;
    return 0;
}

static int append_bytes(struct strings *s, const char *text, size_t length)
{
    if (s->size + length > s->capacity) {
        size_t capacity = s->capacity ? s->capacity : 4096;
        while (capacity < s->size + length)
            capacity *= 2;
        char *bytes = realloc(s->bytes, capacity);
        if (!bytes)
            return -1;
        s->bytes = bytes;
        s->capacity = capacity;
    }
    memcpy(s->bytes + s->size, text, length);
    s->size += length;
    return 0;
}

/* The reference of `text` in the strings area, adding it if it is new.
 * Empty (and, on allocation failure, every) text gives {0, 0}. */
static gl_monitor_string intern(struct strings *s, gl_monitor_text text)
{
    gl_monitor_string none = {0, 0};
    if (!text.text || !text.length || s->failed)
        return none;
    if (text.length > STRING_LIMIT) {
        text.text += text.length - STRING_LIMIT;
        text.length = STRING_LIMIT;
        /* Start at a character, not inside one (UTF-8 continuation bytes
         * are 10xxxxxx). */
        while (text.length && ((unsigned char)*text.text & 0xC0) == 0x80) {
            text.text++;
            text.length--;
        }
    }
    if (2 * (s->used + 1) > s->table_capacity && grow_table(s) < 0) {
        s->failed = 1;
        return none;
    }
    uint64_t hash = hash_text(text.text, text.length);
    size_t slot = hash & (s->table_capacity - 1);
    for (; s->table[slot].length; slot = (slot + 1) & (s->table_capacity - 1)) {
        struct interned *entry = &s->table[slot];
        if (entry->hash == hash && entry->length == text.length &&
            memcmp(s->bytes + entry->offset, text.text, text.length) == 0)
            return (gl_monitor_string){entry->offset, entry->length};
    }
    if (s->size + text.length > UINT32_MAX ||
        append_bytes(s, text.text, text.length) < 0) {
        s->failed = 1;
        return none;
    }
    struct interned entry = {hash, (uint32_t)(s->size - text.length),
                             (uint32_t)text.length};
    s->table[slot] = entry;
    s->used++;
    return (gl_monitor_string){entry.offset, entry.length};
}

/* ------------------------------------------------------------- records */

/* A growing array, filled by the registry walk (which allows nothing but
 * memory functions in its callbacks). */
struct array {
    void *items;
    size_t count, capacity, item_size;
    int failed;
};

/* Frees an array of records, zeroed first: they hold stack addresses,
 * which the hazard audit would find in memory reused by an allocation
 * that does not overwrite all of it. */
static void scrub_and_free(void *items, size_t bytes)
{
    if (items)
        explicit_bzero(items, bytes);
    free(items);
}

static int append(struct array *a, const void *item)
{
    if (a->count == a->capacity) { /* not realloc: it would not scrub */
        size_t capacity = a->capacity ? 2 * a->capacity : 64;
        void *items = malloc(capacity * a->item_size);
        if (!items) {
            a->failed = 1;
            return 1; /* stops the walk */
        }
        if (a->items)
            memcpy(items, a->items, a->count * a->item_size);
        scrub_and_free(a->items, a->capacity * a->item_size);
        a->items = items;
        a->capacity = capacity;
    }
    memcpy((char *)a->items + a->count++ * a->item_size, item, a->item_size);
    return 0;
}

struct copy {
    struct array threads;   /* gl_thread_info */
    struct array greenlets; /* gl_greenlet_info */
};

static int copy_thread(const gl_thread_info *info, void *context)
{
    return append(&((struct copy *)context)->threads, info);
}

static int copy_greenlet(const gl_greenlet_info *info, void *context)
{
    return append(&((struct copy *)context)->greenlets, info);
}

static void fill_thread(gl_monitor_thread *out, const gl_thread_info *info)
{
    memset(out, 0, sizeof *out);
    out->serial = info->serial;
    out->os_id = info->os_id;
    out->exited = (uint32_t)info->exited;
    out->switches = info->switch_serial;
    out->current_id = info->current_id;
    out->saved_bytes = info->saved_bytes;
    out->saved_bytes_peak = info->saved_bytes_peak;
    out->greenlets = info->greenlets;
}

static void fill_greenlet(gl_monitor_greenlet *out,
                          const gl_greenlet_info *info)
{
    memset(out, 0, sizeof *out);
    out->id = info->id;
    out->parent_id = info->parent_id;
    out->thread_serial = info->thread_serial;
    out->state = (uint32_t)info->state;
    out->flags = info->is_main ? GL_MONITOR_GREENLET_MAIN : 0;
    out->stack_pointer = info->stack_pointer;
    out->stack_stop = info->stack_stop;
    out->saved_bytes = info->saved_bytes;
    out->saved_bytes_peak = info->saved_bytes_peak;
    out->switches = info->switches;
    out->created_ns = info->created_ns;
    out->last_ran_serial = info->last_ran_serial;
}

static void add_place(gl_monitor_greenlet *out, const gl_monitor_place *place,
                      struct strings *strings)
{
    out->name = intern(strings, place->name);
    out->function = intern(strings, place->function);
    out->file = intern(strings, place->file);
    out->line = place->line;
    if (out->function.length || out->file.length)
        out->flags |= GL_MONITOR_GREENLET_PLACE;
    out->spawn_function = intern(strings, place->spawn_function);
    out->spawn_file = intern(strings, place->spawn_file);
    out->spawn_line = place->spawn_line;
    if (out->spawn_function.length || out->spawn_file.length)
        out->flags |= GL_MONITOR_GREENLET_SPAWN_SITE;
    if (place->hazard)
        out->flags |= GL_MONITOR_GREENLET_HAZARD;
}

/* The publication in private memory. */
struct publication {
    gl_monitor_thread *threads;
    size_t thread_count;
    gl_monitor_greenlet *greenlets;
    size_t greenlet_count;
    struct strings strings;
    uint64_t saved_bytes;
    int described;
};

/* Copies the registry and describes it: inside the runtime's bracket, so
 * that the records' binding pointers stay valid while it describes them. */
static int build(struct publication *p, const gl_monitor_runtime *runtime,
                 uint64_t *taken_ns)
{
    int entered = runtime && runtime->enter &&
                  runtime->enter(runtime->context) == 0;
    /* Before the copy: a reader that attached after this moment must not
     * take this publication for one made after it asked. */
    *taken_ns = gl__monitor_clock_ns();
    struct copy copy = {{NULL, 0, 0, sizeof(gl_thread_info), 0},
                        {NULL, 0, 0, sizeof(gl_greenlet_info), 0}};
    gl_registry_walk(copy_thread, copy_greenlet, &copy);
    int error = copy.threads.failed || copy.greenlets.failed ? GL_ENOMEM : 0;
    if (!error) {
        p->thread_count = copy.threads.count;
        p->greenlet_count = copy.greenlets.count;
        p->threads = calloc(p->thread_count + 1, sizeof *p->threads);
        p->greenlets = calloc(p->greenlet_count + 1, sizeof *p->greenlets);
        if (!p->threads || !p->greenlets)
            error = GL_ENOMEM;
    }
    for (size_t i = 0; !error && i < p->thread_count; i++) {
        const gl_thread_info *info = &((gl_thread_info *)copy.threads.items)[i];
        fill_thread(&p->threads[i], info);
        p->saved_bytes += info->saved_bytes;
        if (entered && runtime->describe_thread) {
            gl_monitor_text name = {NULL, 0};
            runtime->describe_thread(info, &name, runtime->context);
            p->threads[i].name = intern(&p->strings, name);
        }
    }
    for (size_t i = 0; !error && i < p->greenlet_count; i++) {
        const gl_greenlet_info *info =
            &((gl_greenlet_info *)copy.greenlets.items)[i];
        fill_greenlet(&p->greenlets[i], info);
        if (entered && runtime->describe_greenlet) {
            gl_monitor_place place;
            memset(&place, 0, sizeof place);
            runtime->describe_greenlet(info, &place, runtime->context);
            add_place(&p->greenlets[i], &place, &p->strings);
        }
    }
    if (entered && runtime->leave)
        runtime->leave(runtime->context);
    p->described = entered;
    scrub_and_free(copy.threads.items,
                   copy.threads.capacity * copy.threads.item_size);
    scrub_and_free(copy.greenlets.items,
                   copy.greenlets.capacity * copy.greenlets.item_size);
    if (!error && p->strings.failed)
        error = GL_ENOMEM;
    return error;
}

static void release(struct publication *p)
{
    scrub_and_free(p->threads, (p->thread_count + 1) * sizeof *p->threads);
    scrub_and_free(p->greenlets,
                   (p->greenlet_count + 1) * sizeof *p->greenlets);
    free(p->strings.bytes);
    free(p->strings.table);
}

static size_t align_to_8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Sequence brackets for the segment. The count is our own (the segment's
 * copy may have been overwritten by anyone); readers are other processes,
 * which read through the kernel (pread): the fences order our stores as
 * they reach the shared pages. */
static void publication_begin(gl__monitor_segment *segment)
{
    __atomic_store_n(&segment->header->publish_sequence,
                     ++segment->publish_sequence, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void publication_end(gl__monitor_segment *segment)
{
    __atomic_store_n(&segment->header->publish_sequence,
                     ++segment->publish_sequence, __ATOMIC_RELEASE);
}

static void write_out(gl__monitor_segment *segment,
                      const struct publication *p, size_t threads_offset,
                      size_t greenlets_offset, size_t strings_offset,
                      size_t end, uint64_t taken_ns,
                      const gl_monitor_runtime *runtime)
{
    gl_monitor_header *header = segment->header;
    char *base = (char *)header;
    publication_begin(segment);
    memcpy(base + threads_offset, p->threads,
           p->thread_count * sizeof *p->threads);
    memcpy(base + greenlets_offset, p->greenlets,
           p->greenlet_count * sizeof *p->greenlets);
    if (p->strings.size)
        memcpy(base + strings_offset, p->strings.bytes, p->strings.size);
    memset(header->runtime, 0, sizeof header->runtime);
    const char *name = runtime && runtime->name ? runtime->name : "C";
    strncpy(header->runtime, name, sizeof header->runtime - 1);
    header->segment_size = end;
    header->publications = ++segment->publications;
    header->published_ns = taken_ns;
    header->threads_offset = threads_offset;
    header->greenlets_offset = greenlets_offset;
    header->strings_offset = strings_offset;
    header->thread_count = (uint32_t)p->thread_count;
    header->greenlet_count = (uint32_t)p->greenlet_count;
    header->strings_size = p->strings.size;
    header->process_saved_bytes = p->saved_bytes;
    header->flags = p->described ? GL_MONITOR_PUBLICATION_PLACES : 0;
    publication_end(segment);
}

int gl__monitor_publish(gl__monitor_segment *segment,
                        const gl_monitor_runtime *runtime)
{
    struct publication p;
    memset(&p, 0, sizeof p);
    uint64_t taken_ns;
    int error = build(&p, runtime, &taken_ns);
    if (!error && (p.thread_count > UINT32_MAX || p.greenlet_count > UINT32_MAX))
        error = GL_ENOMEM;
    if (!error) {
        size_t threads_offset = align_to_8(segment->answer_offset +
                                           GL_MONITOR_ANSWER_CAPACITY);
        size_t greenlets_offset =
            threads_offset + p.thread_count * sizeof(gl_monitor_thread);
        size_t strings_offset =
            greenlets_offset + p.greenlet_count * sizeof(gl_monitor_greenlet);
        size_t end = strings_offset + p.strings.size;
        gl__monitor_segment_lock();
        error = gl__monitor_segment_reserve(segment, end);
        if (!error)
            write_out(segment, &p, threads_offset, greenlets_offset,
                      strings_offset, end, taken_ns, runtime);
        gl__monitor_segment_unlock();
    }
    release(&p);
    return error;
}
