/*
 * monitor_internal.h -- what the three files of the monitor reader share
 * (inspect/monitor_parse.c, monitor_discovery.c, monitor_reader.c): the
 * check of a segment's constant header, and the search for a process's
 * segment in /proc. The public face is glmonitor.h.
 */
#ifndef GL_MONITOR_INTERNAL_H
#define GL_MONITOR_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "inspect_internal.h"
#include "monitor_layout.h"

/* What /proc/PID/fd/N reads as for a segment: a memfd's link is its name
 * after "/memfd:", and " (deleted)" because it has no path. */
#define GL__MONITOR_FD_LINK "/memfd:" GL_MONITOR_MEMFD_NAME " (deleted)"

/* Checks the part of a header that is set when the segment is made, in
 * the first `size` bytes of `image`, and copies the header into *header
 * (with memcpy: `image` need not be aligned). The order of the checks
 * decides the code: GL_ENOMONITOR when the bytes present differ from the
 * magic, GL_EVERSION for another layout_version, GL_ECORRUPT when the
 * header is cut short or its header or record sizes are smaller than
 * version 1's structs. Larger sizes are accepted (a compatible extension:
 * readers use the known prefix). The publication itself is not checked. */
GL_HIDDEN int gl__monitor_check_header(const void *image, size_t size,
                                       gl_monitor_header *header);

/* Finds the segment of process `pid`: on success *fd_number is the lowest
 * fd of the process whose link is GL__MONITOR_FD_LINK. Errors:
 * GL_ENOPROCESS (no /proc/PID), GL_EPERM (its fds may not be listed: a
 * process of another user), GL_ENOMONITOR (no such fd), GL_ENOMEM (out of
 * memory or of file descriptors). */
GL_HIDDEN int gl__monitor_locate(int64_t pid, int *fd_number);

/* An errno of open() or opendir() under /proc in GL_E terms: GL_EPERM,
 * GL_ENOMEM, or `otherwise` for the rest (the thing is not there). */
GL_HIDDEN int gl__monitor_open_error(int error, int otherwise);

/* 1 if /proc/PID exists, else 0. Tells "the process has gone" from "it
 * has no segment" after a lookup came up empty. */
GL_HIDDEN int gl__monitor_process_listed(int64_t pid);

#endif /* GL_MONITOR_INTERNAL_H */
