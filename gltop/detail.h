/*
 * detail.h -- the detail pane's text: everything gltop knows of one
 * greenlet, as lines. The facts come from the model's current snapshot
 * (so they follow each refresh); the stacks from the process's answer to
 * a request (gltop_collector_stacks), kept until asked again, and for a
 * greenlet flagged H the hits of an audit the process ran on request. No curses:
 * the view draws the lines, tests read them.
 */
#ifndef GLTOP_DETAIL_H
#define GLTOP_DETAIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "model.h"

/* The answer to the last request for one greenlet's stacks. */
typedef struct gltop_detail_stacks {
    uint64_t id;       /* the greenlet asked about; 0: not asked */
    int error;         /* GL_E* of the request, 0 if it was answered */
    int status;        /* GL_MONITOR_ANSWER_* when answered */
    char *text;        /* the answer (free() it); NULL if none */
    time_t asked_at;
    char *audit;       /* for a greenlet flagged H: the answer to an audit
                          request (free() it), NULL if not asked */
} gltop_detail_stacks;

typedef enum gltop_line_kind {
    GLTOP_LINE_TEXT = 0,
    GLTOP_LINE_TITLE,   /* a section's heading */
    GLTOP_LINE_NOTE,    /* something missing, and why */
    GLTOP_LINE_ALERT    /* a flag that is set */
} gltop_line_kind;

typedef struct gltop_detail_line {
    gltop_line_kind kind;
    char *text;
} gltop_detail_line;

typedef struct gltop_detail {
    size_t count;
    gltop_detail_line *lines;
} gltop_detail;

/* The lines for greenlet `id`: its facts, its saved region, its flags,
 * then its Python and native stacks from `stacks` (if they are about it).
 * A greenlet that is no longer in the snapshot gets a line saying so.
 * Returns 0 or GL_ENOMEM (nothing to free then). */
int gltop_detail_build(const gltop_model *model, uint64_t id,
                       const gltop_detail_stacks *stacks, gltop_detail *out);
void gltop_detail_free(gltop_detail *detail);
/* Forgets the answers (stacks and audit). */
void gltop_detail_stacks_clear(gltop_detail_stacks *stacks);

#endif /* GLTOP_DETAIL_H */
