/*
 * view.h -- what gltop's panels share: colours, and writing text that
 * came from another process into a cell range without overflowing it.
 * Only the view_*.c files include curses for drawing.
 */
#ifndef GLTOP_VIEW_H
#define GLTOP_VIEW_H

#include <curses.h>

#include "screen.h"

/* Colour pairs (when the terminal has colours). */
enum gltop_colour {
    GLTOP_COLOUR_TITLE = 1, /* the first header line */
    GLTOP_COLOUR_BAR,       /* column titles */
    GLTOP_COLOUR_SORTED,    /* the sort column's title */
    GLTOP_COLOUR_SELECTED,  /* the selected row */
    GLTOP_COLOUR_RUNNING,
    GLTOP_COLOUR_NEW,
    GLTOP_COLOUR_DEAD,
    GLTOP_COLOUR_ALERT,     /* flags, errors */
    GLTOP_COLOUR_NOTE,      /* something missing */
    GLTOP_COLOUR_KEY,       /* a key in the footer */
    GLTOP_COLOURS
};

/* Sets up the current curses screen as the view needs it: keys one at a
 * time, unechoed, with function keys decoded; no cursor; colour pairs if
 * the terminal has colours (screen->colour says whether). */
void gltop_view_set_up_terminal(gltop_screen *screen);
/* The attribute for `colour`, or `fallback` without colours. */
attr_t gltop_view_attr(const gltop_screen *screen, enum gltop_colour colour,
                       attr_t fallback);

/* Writes `text` at (y, x) in at most `width` columns, as UTF-8: invalid
 * bytes, controls and bidirectional formatting (gltop_is_control) and
 * what the locale cannot show become '?'; characters that take no column
 * or two are counted as they are shown. Returns the columns written. */
int gltop_view_put(int y, int x, int width, const char *text);
/* Like gltop_view_put with printf's format. */
int gltop_view_printf(int y, int x, int width, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
/* Fills line y with `attr` (for bars and the selected row). */
void gltop_view_fill(int y, attr_t attr);

/* The last line: the message if there is one, else the keys of `hints`
 * ("KEY\twhat\tKEY\twhat..."). */
void gltop_view_footer(const gltop_screen *screen, const char *hints);

/* The panels. */
void gltop_view_picker(gltop_screen *screen);
void gltop_view_list(gltop_screen *screen);
void gltop_view_detail(gltop_screen *screen);
void gltop_view_help(gltop_screen *screen);

/* Lines above and below the body of each screen. */
#define GLTOP_LIST_HEADER_LINES 4  /* three of facts, one of column titles */
#define GLTOP_PANE_HEADER_LINES 2  /* a title and a bar */
#define GLTOP_FOOTER_LINES 1

#endif /* GLTOP_VIEW_H */
