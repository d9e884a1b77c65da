/*
 * batch.h -- gltop's batch mode (gltop -b): the model's rows as text or
 * as JSON lines on a stream, one block or line per refresh, no curses.
 */
#ifndef GLTOP_BATCH_H
#define GLTOP_BATCH_H

#include <stdio.h>

#include "model.h"

/* One refresh as text: a summary line, column titles, a row per greenlet
 * (indented by tree depth), then an empty line. `command` is the
 * process's command line. */
void gltop_batch_text(const gltop_model *model, const char *command,
                      FILE *out);
/* One refresh as one JSON object on one line. */
void gltop_batch_json(const gltop_model *model, const char *command,
                      FILE *out);

#endif /* GLTOP_BATCH_H */
