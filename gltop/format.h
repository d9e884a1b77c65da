/*
 * format.h -- how gltop writes numbers and states, shared by the batch
 * output and the screen so that both say the same thing the same way.
 */
#ifndef GLTOP_FORMAT_H
#define GLTOP_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "glengine.h"

/* "new", "running", "suspended", "dead"; "?" for anything else. */
const char *gltop_state_name(gl_state state);

/* Bytes in at most 6 characters: "912", "14.2K", "3.1M", "12G". */
void gltop_format_bytes(char *out, size_t size, uint64_t bytes);
/* A rate in at most 6 characters: "-" when negative (unknown), whole
 * numbers below ten thousand, then "12.3K", "512K", "1.2M". */
void gltop_format_rate(char *out, size_t size, double rate);
/* A duration in nanoseconds in at most 6 characters: "-" for UINT64_MAX
 * (unknown), "0.4s", "12s", "7m03s", "5h12m", "3d04h", "365d", "584y". */
void gltop_format_duration(char *out, size_t size, uint64_t ns);
/* A duration that may be a lower bound: ">12s" when `at_least`, else as
 * gltop_format_duration. At most 7 characters. */
void gltop_format_at_least(char *out, size_t size, uint64_t ns, int at_least);
/* The flags of a row (GLTOP_FLAG_*) as letters, "" for none. */
void gltop_format_flags(char *out, size_t size, unsigned flags);

/* The last part of a path, for narrow columns (unless it ends in '/'). */
const char *gltop_base_name(const char *path);

/* Text from another process (names, files, the command line) is bytes:
 * the reader has replaced C0 controls, but it may hold invalid UTF-8 or
 * C1 controls (U+0080 to U+009F, which terminals may act on). This reads
 * one character of `*text`, moves *text past it, and returns its code
 * point, or -1 for a byte that does not begin a valid, shortest UTF-8
 * sequence (then *text moves one byte). *text must not be at its end. */
long gltop_utf8_next(const char **text);
/* Whether code point c is a control character (C0, DEL, C1) or a
 * bidirectional formatting character: what a terminal must not get. */
int gltop_is_control(long c);

#endif /* GLTOP_FORMAT_H */
