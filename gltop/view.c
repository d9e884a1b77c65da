/*
 * view.c -- what gltop's panels share (view.h), and the choice of panel.
 *
 * Flicker: each frame erases stdscr and draws it whole, and the main loop
 * refreshes once; curses then sends the terminal only the cells that
 * changed, so nothing is ever blanked on the terminal itself.
 */
#define _GNU_SOURCE
#include "format.h"
#include "view.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static int start_colours(void)
{
    if (!has_colors() || start_color() == ERR)
        return 0;
    int background = use_default_colors() == OK ? -1 : COLOR_BLACK;
    init_pair(GLTOP_COLOUR_TITLE, COLOR_CYAN, background);
    init_pair(GLTOP_COLOUR_BAR, COLOR_BLACK, COLOR_GREEN);
    init_pair(GLTOP_COLOUR_SORTED, COLOR_BLACK, COLOR_CYAN);
    init_pair(GLTOP_COLOUR_SELECTED, COLOR_BLACK, COLOR_CYAN);
    init_pair(GLTOP_COLOUR_RUNNING, COLOR_GREEN, background);
    init_pair(GLTOP_COLOUR_NEW, COLOR_CYAN, background);
    init_pair(GLTOP_COLOUR_DEAD, COLOR_BLUE, background);
    init_pair(GLTOP_COLOUR_ALERT, COLOR_RED, background);
    init_pair(GLTOP_COLOUR_NOTE, COLOR_YELLOW, background);
    init_pair(GLTOP_COLOUR_KEY, COLOR_BLACK, COLOR_CYAN);
    return 1;
}

void gltop_view_set_up_terminal(gltop_screen *screen)
{
    cbreak();
    noecho();
    nonl();
    keypad(stdscr, TRUE);
    curs_set(0);
    screen->colour = start_colours();
}

attr_t gltop_view_attr(const gltop_screen *screen, enum gltop_colour colour,
                       attr_t fallback)
{
    return screen->colour ? (attr_t)COLOR_PAIR(colour) : fallback;
}

int gltop_view_put(int y, int x, int width, const char *text)
{
    int used = 0;
    while (*text && used < width) {
        long c = gltop_utf8_next(&text);
        wchar_t shown = c < 0 || gltop_is_control(c) ? L'?' : (wchar_t)c;
        int columns = wcwidth(shown); /* -1 where the locale cannot */
        if (columns < 0) {
            shown = L'?';
            columns = 1;
        }
        if (used + columns > width)
            break;
        mvaddnwstr(y, x + used, &shown, 1);
        used += columns;
    }
    return used;
}

int gltop_view_printf(int y, int x, int width, const char *format, ...)
{
    char line[1024];
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(line, sizeof line, format, arguments);
    va_end(arguments);
    return gltop_view_put(y, x, width, line);
}

void gltop_view_fill(int y, attr_t attr)
{
    mvchgat(y, 0, -1, attr, PAIR_NUMBER(attr), NULL);
}

void gltop_view_footer(const gltop_screen *screen, const char *hints)
{
    int y = LINES - 1;
    move(y, 0);
    clrtoeol();
    if (screen->message[0]) {
        attrset(gltop_view_attr(screen, GLTOP_COLOUR_NOTE, A_BOLD) | A_BOLD);
        gltop_view_put(y, 0, COLS, screen->message);
        attrset(A_NORMAL);
        return;
    }
    /* Alternating key and meaning, as htop's function-key bar. */
    char copy[512];
    snprintf(copy, sizeof copy, "%s", hints);
    int x = 0, is_key = 1;
    for (char *part = strtok(copy, "\t"); part && x < COLS;
         part = strtok(NULL, "\t"), is_key = !is_key) {
        attrset(is_key ? gltop_view_attr(screen, GLTOP_COLOUR_KEY, A_REVERSE)
                       : A_NORMAL);
        x += gltop_view_put(y, x, COLS - x, part);
        attrset(A_NORMAL);
        x += gltop_view_put(y, x, COLS - x, is_key ? " " : "  ");
    }
}

void gltop_view_draw(gltop_screen *screen)
{
    erase();
    switch (screen->mode) {
    case GLTOP_MODE_PICKER:
        gltop_view_picker(screen);
        break;
    case GLTOP_MODE_LIST:
        gltop_view_list(screen);
        break;
    case GLTOP_MODE_DETAIL:
        gltop_view_detail(screen);
        break;
    default:
        gltop_view_help(screen);
        break;
    }
}

size_t gltop_view_page_lines(const gltop_screen *screen)
{
    int header = screen->mode == GLTOP_MODE_LIST ? GLTOP_LIST_HEADER_LINES
                                                 : GLTOP_PANE_HEADER_LINES;
    int lines = LINES - header - GLTOP_FOOTER_LINES;
    return lines > 0 ? (size_t)lines : 0;
}
