/*
 * gltop_snapshots.c -- snapshots for gltop's tests (gltop_snapshots.h).
 * Native builds only (GL_TEST_HAVE_INSPECT).
 */
#ifdef GL_TEST_HAVE_INSPECT
#include "gltop_snapshots.h"
#include "monitor_layout.h"
#include "runner.h"

#include <stdlib.h>
#include <string.h>

/* A one-thread publication of `specs`, parsed as a reader would. */
gl_monitor_snapshot *snapshot_of(const struct spec *specs, size_t n)
{
    size_t strings_size = 0;
    for (size_t i = 0; i < n; i++)
        strings_size += strlen(specs[i].function);
    size_t threads_offset = sizeof(gl_monitor_header);
    size_t greenlets_offset = threads_offset + sizeof(gl_monitor_thread);
    size_t strings_offset = greenlets_offset + n * sizeof(gl_monitor_greenlet);
    size_t size = strings_offset + strings_size;
    unsigned char *image = calloc(1, size);
    CHECK(image != NULL);
    gl_monitor_header header = {0};
    memcpy(header.magic, GL_MONITOR_MAGIC, sizeof header.magic);
    header.layout_version = GL_MONITOR_LAYOUT_VERSION;
    header.header_size = sizeof header;
    header.thread_record_size = sizeof(gl_monitor_thread);
    header.greenlet_record_size = sizeof(gl_monitor_greenlet);
    header.segment_size = size;
    header.threads_offset = threads_offset;
    header.greenlets_offset = greenlets_offset;
    header.strings_offset = strings_offset;
    header.thread_count = 1;
    header.greenlet_count = (uint32_t)n;
    header.strings_size = strings_size;
    gl_monitor_thread thread = {.serial = 1, .os_id = 7};
    size_t string_at = 0;
    for (size_t i = 0; i < n; i++) {
        gl_monitor_greenlet g = {0};
        g.id = specs[i].id;
        g.parent_id = specs[i].parent;
        g.thread_serial = 1;
        g.state = specs[i].state;
        g.switches = specs[i].switches;
        g.saved_bytes = specs[i].saved;
        g.saved_bytes_peak = specs[i].saved;
        g.stack_pointer = specs[i].stack_pointer;
        g.stack_stop = specs[i].stack_stop;
        g.flags = GL_MONITOR_GREENLET_PLACE | specs[i].flags;
        if (g.state == GL_STATE_RUNNING)
            thread.current_id = g.id;
        size_t length = strlen(specs[i].function);
        g.function = (gl_monitor_string){(uint32_t)string_at, (uint32_t)length};
        memcpy(image + strings_offset + string_at, specs[i].function, length);
        string_at += length;
        thread.switches += specs[i].switches;
        memcpy(image + greenlets_offset + i * sizeof g, &g, sizeof g);
    }
    memcpy(image + threads_offset, &thread, sizeof thread);
    memcpy(image, &header, sizeof header);
    gl_monitor_snapshot *snapshot;
    CHECK_OK(gl_monitor_parse(image, size, &snapshot));
    free(image);
    return snapshot;
}
#endif /* GL_TEST_HAVE_INSPECT */
