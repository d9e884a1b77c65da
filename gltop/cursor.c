/*
 * cursor.c -- a selection in a scrolled list (cursor.h).
 */
#include "cursor.h"

void gltop_cursor_move(gltop_cursor *cursor, long delta, size_t count)
{
    if (count == 0) {
        cursor->selected = 0;
        return;
    }
    if (delta < 0 && (size_t)-delta > cursor->selected)
        cursor->selected = 0;
    else if (delta < 0)
        cursor->selected -= (size_t)-delta;
    else if ((size_t)delta >= count - cursor->selected)
        cursor->selected = count - 1;
    else
        cursor->selected += (size_t)delta;
}

void gltop_cursor_fit(gltop_cursor *cursor, size_t count, size_t height)
{
    if (cursor->selected >= count)
        cursor->selected = count ? count - 1 : 0;
    if (height == 0) {
        cursor->top = cursor->selected;
        return;
    }
    if (cursor->selected < cursor->top)
        cursor->top = cursor->selected;
    if (cursor->selected >= cursor->top + height)
        cursor->top = cursor->selected - height + 1;
    if (count > height && cursor->top > count - height)
        cursor->top = count - height; /* no empty lines below the end */
    if (count <= height)
        cursor->top = 0;
}
