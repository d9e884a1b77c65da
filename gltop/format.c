/*
 * format.c -- gltop's formats (format.h).
 */
#include "format.h"
#include "model.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char *gltop_state_name(gl_state state)
{
    static const char *const names[] = {"new", "running", "suspended",
                                        "dead"};
    return (unsigned)state < sizeof names / sizeof *names ? names[state] : "?";
}

/* value / unit with one decimal below 100 units, none above. */
static void scaled(char *out, size_t size, double value, const char *units)
{
    int unit = 0;
    while (value >= 1024 && units[unit + 1]) {
        value /= 1024;
        unit++;
    }
    if (unit == 0)
        snprintf(out, size, "%.0f", value);
    else if (value < 99.95)
        snprintf(out, size, "%.1f%c", value, units[unit]);
    else
        snprintf(out, size, "%.0f%c", value, units[unit]);
}

void gltop_format_bytes(char *out, size_t size, uint64_t bytes)
{
    scaled(out, size, (double)bytes, " KMGTPE");
}

void gltop_format_rate(char *out, size_t size, double rate)
{
    if (rate < 0)
        snprintf(out, size, "-");
    else if (rate < 10000)
        snprintf(out, size, "%.0f", rate);
    else if (rate < 99950)
        snprintf(out, size, "%.1fK", rate / 1000);
    else if (rate < 999500)
        snprintf(out, size, "%.0fK", rate / 1000);
    else
        snprintf(out, size, "%.1fM", rate / 1e6);
}

void gltop_format_duration(char *out, size_t size, uint64_t ns)
{
    if (ns == UINT64_MAX) {
        snprintf(out, size, "-");
        return;
    }
    uint64_t s = ns / 1000000000u;
    if (s < 10)
        snprintf(out, size, "%.1fs", (double)ns / 1e9);
    else if (s < 60)
        snprintf(out, size, "%" PRIu64 "s", s);
    else if (s < 3600)
        snprintf(out, size, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, size, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
                 s / 60 % 60);
    else if (s < 100 * 86400)
        snprintf(out, size, "%" PRIu64 "d%02" PRIu64 "h", s / 86400,
                 s / 3600 % 24);
    else if (s < 100000ull * 86400)
        snprintf(out, size, "%" PRIu64 "d", s / 86400);
    else
        snprintf(out, size, "%" PRIu64 "y", s / 86400 / 365);
}

void gltop_format_at_least(char *out, size_t size, uint64_t ns, int at_least)
{
    if (!at_least || ns == UINT64_MAX || size < 2) {
        gltop_format_duration(out, size, ns);
        return;
    }
    out[0] = '>';
    gltop_format_duration(out + 1, size - 1, ns);
}

void gltop_format_flags(char *out, size_t size, unsigned flags)
{
    snprintf(out, size, "%s%s", flags & GLTOP_FLAG_HAZARD ? "H" : "",
             flags & GLTOP_FLAG_BLOCKING ? "B" : "");
}

long gltop_utf8_next(const char **text)
{
    const unsigned char *p = (const unsigned char *)*text;
    unsigned char lead = p[0];
    int length = lead < 0x80   ? 1
                 : lead < 0xc2 ? 0 /* continuation byte, or overlong */
                 : lead < 0xe0 ? 2
                 : lead < 0xf0 ? 3
                 : lead < 0xf5 ? 4
                               : 0;
    long c = length == 1 ? lead : length == 2 ? lead & 0x1f
                              : length == 3   ? lead & 0x0f
                                              : lead & 0x07;
    for (int i = 1; i < length; i++) {
        if ((p[i] & 0xc0) != 0x80) { /* also stops at the terminator */
            length = 0;
            break;
        }
        c = c << 6 | (p[i] & 0x3f);
    }
    static const long shortest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (length == 0 || c < shortest[length] || c > 0x10ffff ||
        (c >= 0xd800 && c <= 0xdfff)) {
        *text += 1;
        return -1;
    }
    *text += length;
    return c;
}

int gltop_is_control(long c)
{
    return c < 0x20 || (c >= 0x7f && c <= 0x9f) ||
           /* bidirectional marks, embeddings, overrides and isolates:
            * they would reorder what the terminal shows after them */
           c == 0x061c || c == 0x200e || c == 0x200f ||
           (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

const char *gltop_base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}
