/*
 * cursor.h -- a selection in a list taller than its window: which line is
 * selected and which is at the top. The greenlet list, the picker and the
 * detail pane move through their lines with the same keys, so they share
 * this. No curses here.
 */
#ifndef GLTOP_CURSOR_H
#define GLTOP_CURSOR_H

#include <stddef.h>

typedef struct gltop_cursor {
    size_t selected;
    size_t top;
} gltop_cursor;

/* Moves the selection by `delta` lines (negative: up), within [0, count). */
void gltop_cursor_move(gltop_cursor *cursor, long delta, size_t count);
/* Clamps the selection to [0, count) and moves `top` so that it is one of
 * the `height` lines shown, keeping the window full when it can be. */
void gltop_cursor_fit(gltop_cursor *cursor, size_t count, size_t height);

#endif /* GLTOP_CURSOR_H */
