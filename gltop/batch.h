/*
 * batch.h -- gltop's batch mode (gltop -b): the model's rows as text or
 * as JSON lines on a stream, one block or line per refresh, no curses.
 */
#ifndef GLTOP_BATCH_H
#define GLTOP_BATCH_H

#include <stdio.h>

#include "model.h"
#include "processes.h"

/* One refresh as text: a summary line, column titles, a row per greenlet
 * (indented by tree depth), then an empty line. `pid` and `command` are
 * the process's as gltop sees them (the segment's own pid is the one
 * inside the process's pid namespace). */
void gltop_batch_text(const gltop_model *model, int64_t pid,
                      const char *command, FILE *out);
/* One refresh as one JSON object on one line. */
void gltop_batch_json(const gltop_model *model, int64_t pid,
                      const char *command, FILE *out);

/* The processes that publish a segment (gltop -b without -p), as the
 * picker shows them: a text table, or one JSON object on one line. */
void gltop_batch_processes(const gltop_process *processes, size_t count,
                           int json, FILE *out);

#endif /* GLTOP_BATCH_H */
