/*
 * model.c -- gltop's model (model.h): rates and idle times from two
 * samples, and rows in tree or flat order, sorted and filtered.
 *
 * The snapshot comes from another process and has passed the reader's
 * checks, but its tree may still be odd (a parent that is not in the
 * snapshot, or, in a hostile segment, a cycle of parents): such greenlets
 * are shown as roots, and every greenlet is shown at most once.
 *
 * Scale (bench/gltop_bench.c: a refresh of 100,000 greenlets in well
 * under 50 ms): each
 * update sorts the snapshot by id once (`by_id`), and everything else
 * that needs id order uses that: the history is written in id order, so
 * it needs no sort of its own, and is matched against the previous one by
 * a merge rather than a search per greenlet; a rebuild (a key that sorts
 * or filters) sorts only by its column, and not even that for ascending
 * id. The snapshot comes in registry order (each thread's greenlets
 * newest first), so the sort by id cannot be skipped.
 */
#define _GNU_SOURCE
#include "model.h"

#include <stdlib.h>
#include <string.h>

/* What the model remembers of a greenlet between samples, by id. */
struct history {
    uint64_t id;
    uint64_t switches;
    uint64_t last_ran_ns; /* UINT64_MAX: not seen running since we began */
};

/* A greenlet of the snapshot in the id index: its id beside its index,
 * so that sorting and searching by id read one compact array rather than
 * the snapshot's views, scattered over megabytes at 100,000 greenlets. */
struct id_entry {
    uint64_t id;
    size_t index;
};

/* What it remembers of a thread, by serial. */
struct thread_history {
    uint64_t serial;
    uint64_t switches;
    uint64_t unchanged_since_ns; /* first sample that saw this count */
    uint64_t alive;              /* its greenlets that are not dead */
    int blocking;
};

/* What the model derives from one snapshot: made whole by an update, or
 * not at all. */
struct derived {
    struct history *history; /* sorted by id, one per greenlet */
    struct id_entry *by_id;  /* the snapshot's greenlets, in id order */
    double *rates;           /* per greenlet of the snapshot */
    uint64_t *idle;
    unsigned *flags;
    struct thread_history *thread_history; /* sorted by serial */
    gltop_thread_row *threads; /* per thread of the snapshot */
};

static int derived_allocate(struct derived *d, size_t greenlets,
                            size_t threads)
{
    size_t n = greenlets + 1, t = threads + 1;
    *d = (struct derived){
        malloc(n * sizeof *d->history), malloc(n * sizeof *d->by_id),
        malloc(n * sizeof *d->rates),   malloc(n * sizeof *d->idle),
        malloc(n * sizeof *d->flags),   malloc(t * sizeof *d->thread_history),
        malloc(t * sizeof *d->threads)};
    return d->history && d->by_id && d->rates && d->idle && d->flags &&
                   d->thread_history && d->threads
               ? 0
               : GL_ENOMEM;
}

static void derived_free(struct derived *d)
{
    free(d->history);
    free(d->by_id);
    free(d->rates);
    free(d->idle);
    free(d->flags);
    free(d->thread_history);
    free(d->threads);
    *d = (struct derived){0};
}

struct gltop_model {
    gl_monitor_snapshot *snapshot;
    uint64_t sampled_ns;
    uint64_t first_sampled_ns;
    double process_rate;
    struct derived d;          /* of `snapshot` */
    uint64_t last_switch_ns;   /* UINT64_MAX: before the second sample */
    int switch_seen;           /* a switch came between two samples; if
                                  not, last_switch_ns is the first sample */
    uint64_t block_threshold_ns;
    gltop_row *rows;
    size_t row_count;
    int tree;
    gltop_column column;
    int descending;
    char *filter;
};

int gltop_model_create(gltop_model **out)
{
    gltop_model *model = calloc(1, sizeof *model);
    if (!model)
        return GL_ENOMEM;
    model->tree = 1;
    model->process_rate = -1;
    model->last_switch_ns = UINT64_MAX;
    model->block_threshold_ns = GLTOP_BLOCK_THRESHOLD_NS;
    *out = model;
    return 0;
}

void gltop_model_destroy(gltop_model *model)
{
    if (!model)
        return;
    gl_monitor_snapshot_free(model->snapshot);
    derived_free(&model->d);
    free(model->rows);
    free(model->filter);
    free(model);
}

static int by_thread_serial(const void *a, const void *b)
{
    uint64_t x = ((const struct thread_history *)a)->serial;
    uint64_t y = ((const struct thread_history *)b)->serial;
    return x < y ? -1 : x > y;
}

static uint64_t total_switches(const gl_monitor_snapshot *s)
{
    uint64_t total = 0;
    for (size_t i = 0; i < s->thread_count; i++)
        total += s->threads[i].switches;
    return total;
}

/* ----------------------------------------------------------------- rows */

static int compare_numbers(uint64_t x, uint64_t y)
{
    return x < y ? -1 : x > y;
}

/* strcmp, at once for one string: the reader gives the greenlets that
 * share a place one copy of its strings (inspect/monitor_parse.c), so
 * when sorting by place equal pointers are the common case. */
static int compare_texts(const char *x, const char *y)
{
    return x == y ? 0 : strcmp(x, y);
}

/* A greenlet as the sort sees it: its value in the sort column beside
 * its id and index, so that the sort reads one compact array rather than
 * the snapshot's views, scattered over megabytes at 100,000 greenlets.
 * Numbers become one order-preserving key; the place is kept as its
 * strings (shared by the greenlets in the same function) and line. */
struct sort_entry {
    uint64_t key;
    uint64_t id;
    const char *function, *file;
    unsigned line;
    size_t index;
};

/* A switch rate as a key: unknown (negative) first, then by value (the
 * bits of a non-negative double order as the double does). */
static uint64_t rate_key(double rate)
{
    uint64_t bits;
    if (rate < 0)
        return 0;
    memcpy(&bits, &rate, sizeof bits);
    return bits + 1;
}

static struct sort_entry sort_entry_of(const gltop_model *m, size_t i)
{
    const gl_monitor_greenlet_view *g = &m->snapshot->greenlets[i];
    struct sort_entry e = {0, g->id, NULL, NULL, 0, i};
    switch (m->column) {
    case GLTOP_COLUMN_STATE:
        e.key = g->state;
        break;
    case GLTOP_COLUMN_THREAD:
        e.key = g->thread_serial;
        break;
    case GLTOP_COLUMN_HEAP:
        e.key = g->saved_bytes;
        break;
    case GLTOP_COLUMN_PEAK:
        e.key = g->saved_bytes_peak;
        break;
    case GLTOP_COLUMN_RATE:
        e.key = rate_key(m->d.rates[i]);
        break;
    case GLTOP_COLUMN_IDLE:
        e.key = m->d.idle[i];
        break;
    case GLTOP_COLUMN_WHERE:
        e.function = g->function;
        e.file = g->file;
        e.line = g->line;
        break;
    default:
        e.key = g->id;
        break;
    }
    return e;
}

/* By the column (descending if the context says so), then by id
 * ascending, so that the order is total. */
static int compare_entries(const void *left, const void *right,
                           void *descending)
{
    const struct sort_entry *x = left, *y = right;
    int order = compare_numbers(x->key, y->key);
    if (!order && x->function)
        order = compare_texts(x->function, y->function);
    if (!order && x->file)
        order = compare_texts(x->file, y->file);
    if (!order)
        order = compare_numbers(x->line, y->line);
    if (*(const int *)descending)
        order = -order;
    return order ? order : compare_numbers(x->id, y->id);
}

/* The snapshot's indices in sort order, into `sorted`. */
static int sort_indices(const gltop_model *m, size_t *sorted)
{
    size_t n = m->snapshot->greenlet_count;
    if (m->column == GLTOP_COLUMN_ID && !m->descending) {
        for (size_t k = 0; k < n; k++) /* already in that order */
            sorted[k] = m->d.by_id[k].index;
        return 0;
    }
    struct sort_entry *entries = malloc((n + 1) * sizeof *entries);
    if (!entries)
        return GL_ENOMEM;
    for (size_t i = 0; i < n; i++)
        entries[i] = sort_entry_of(m, i);
    int descending = m->descending;
    qsort_r(entries, n, sizeof *entries, compare_entries, &descending);
    for (size_t k = 0; k < n; k++)
        sorted[k] = entries[k].index;
    free(entries);
    return 0;
}

static int matches(const gl_monitor_greenlet_view *g, const char *filter)
{
    return !filter || !*filter || strstr(g->name, filter) ||
           strstr(g->function, filter) || strstr(g->file, filter);
}

/* The index of the greenlet with `id`, through `by_id` (`count` entries
 * sorted by id), or SIZE_MAX. */
static size_t find_index(const struct id_entry *by_id, size_t count,
                         uint64_t id)
{
    size_t low = 0, high = count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        uint64_t here = by_id[middle].id;
        if (here == id)
            return by_id[middle].index;
        if (here < id)
            low = middle + 1;
        else
            high = middle;
    }
    return SIZE_MAX;
}

static int by_entry_id(const void *left, const void *right)
{
    return compare_numbers(((const struct id_entry *)left)->id,
                           ((const struct id_entry *)right)->id);
}

static void add_row(gltop_model *m, size_t g, unsigned depth)
{
    m->rows[m->row_count++] = (gltop_row){&m->snapshot->greenlets[g], depth,
                                          m->d.rates[g], m->d.idle[g],
                                          m->d.flags[g]};
}

/* Appends `root` and its shown descendants, depth first, children in
 * sort order: `children` lists, for each greenlet, its children as a run
 * in `child_list` starting at `first_child`. Iterative: a deep chain of
 * parents cannot overflow gltop's stack. */
static void add_subtree(gltop_model *m, size_t root, const size_t *first_child,
                        const size_t *child_count, const size_t *child_list,
                        const char *shown, char *placed, size_t *stack,
                        unsigned *depths)
{
    size_t top = 0;
    stack[top] = root;
    depths[top++] = 0;
    while (top) {
        size_t g = stack[--top];
        unsigned depth = depths[top];
        if (placed[g])
            continue;
        placed[g] = 1;
        add_row(m, g, depth);
        /* Push in reverse so that the first child comes out first. */
        for (size_t k = child_count[g]; k > 0; k--) {
            size_t child = child_list[first_child[g] + k - 1];
            if (shown[child] && !placed[child]) {
                stack[top] = child;
                depths[top++] = depth + 1;
            }
        }
    }
}

static int rebuild_rows(gltop_model *m)
{
    m->row_count = 0;
    const gl_monitor_snapshot *s = m->snapshot;
    if (!s)
        return 0;
    size_t n = s->greenlet_count;
    const struct id_entry *by_id = m->d.by_id;
    size_t *sorted = malloc((n + 1) * sizeof *sorted);
    size_t *first_child = calloc(n + 1, sizeof *first_child);
    size_t *child_count = calloc(n + 1, sizeof *child_count);
    size_t *child_list = malloc((n + 1) * sizeof *child_list);
    size_t *parent_of = malloc((n + 1) * sizeof *parent_of);
    size_t *stack = malloc((n + 1) * sizeof *stack);
    unsigned *depths = malloc((n + 1) * sizeof *depths);
    char *shown = calloc(n + 1, 1), *placed = calloc(n + 1, 1);
    gltop_row *rows = realloc(m->rows, (n + 1) * sizeof *rows);
    int error = 0;
    if (rows)
        m->rows = rows;
    if (!sorted || !first_child || !child_count || !child_list ||
        !parent_of || !stack || !depths || !shown || !placed || !rows) {
        error = GL_ENOMEM;
        goto done;
    }
    if ((error = sort_indices(m, sorted)) != 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        shown[i] = (char)matches(&s->greenlets[i], m->filter);
        parent_of[i] = m->tree ? find_index(by_id, n, s->greenlets[i].parent_id)
                               : SIZE_MAX;
    }
    if (!m->tree) {
        for (size_t k = 0; k < n; k++)
            if (shown[sorted[k]])
                add_row(m, sorted[k], 0);
        goto done;
    }
    /* A shown greenlet's ancestors are shown too. The walk up stops at
     * an ancestor already shown: its own walk (before or after) covers
     * the rest, so each greenlet is marked once and a chain of n costs n,
     * not n squared; a cycle of parents ends there as well. Without a
     * filter every greenlet is shown already. */
    for (size_t i = 0; m->filter && i < n; i++) {
        if (!shown[i])
            continue;
        for (size_t up = parent_of[i]; up != SIZE_MAX && !shown[up];
             up = parent_of[up])
            shown[up] = 1;
    }
    /* Children runs in sort order: count, then place. */
    for (size_t i = 0; i < n; i++)
        if (parent_of[i] != SIZE_MAX)
            child_count[parent_of[i]]++;
    for (size_t i = 0, next = 0; i < n; i++) {
        first_child[i] = next;
        next += child_count[i];
        child_count[i] = 0;
    }
    for (size_t k = 0; k < n; k++) {
        size_t g = sorted[k], parent = parent_of[g];
        if (parent != SIZE_MAX)
            child_list[first_child[parent] + child_count[parent]++] = g;
    }
    for (size_t k = 0; k < n; k++) /* roots: no parent here */
        if (shown[sorted[k]] && parent_of[sorted[k]] == SIZE_MAX)
            add_subtree(m, sorted[k], first_child, child_count, child_list,
                        shown, placed, stack, depths);
    for (size_t k = 0; k < n; k++) /* what a cycle of parents cut off */
        if (shown[sorted[k]] && !placed[sorted[k]])
            add_subtree(m, sorted[k], first_child, child_count, child_list,
                        shown, placed, stack, depths);
done:
    free(sorted);
    free(first_child);
    free(child_count);
    free(child_list);
    free(parent_of);
    free(stack);
    free(depths);
    free(shown);
    free(placed);
    return error;
}

/* --------------------------------------------------------------- update */

/* The new thread rows and history (in snapshot order; the caller sorts
 * the history): switch rates, busy shares, how long each thread has gone
 * without a switch, and whether it is blocking. */
static void update_threads(const gltop_model *m, const gl_monitor_snapshot *s,
                           uint64_t now_ns, double seconds,
                           const double *thread_busy,
                           struct thread_history *history,
                           gltop_thread_row *rows)
{
    size_t known = m->snapshot ? m->snapshot->thread_count : 0;
    for (size_t i = 0; i < s->thread_count; i++) {
        const gl_monitor_thread_view *t = &s->threads[i];
        struct thread_history key = {.serial = t->serial};
        const struct thread_history *before =
            m->d.thread_history ? bsearch(&key, m->d.thread_history, known,
                                        sizeof key, by_thread_serial)
                              : NULL;
        struct thread_history *now = &history[i];
        *now = (struct thread_history){t->serial, t->switches, now_ns, 0, 0};
        if (before && before->switches == t->switches)
            now->unchanged_since_ns = before->unchanged_since_ns;
        gltop_thread_row *row = &rows[i];
        *row = (gltop_thread_row){t, -1, -1, now_ns - now->unchanged_since_ns,
                                  0};
        if (before && seconds > 0 && t->switches >= before->switches)
            row->switches_per_second =
                (double)(t->switches - before->switches) / seconds;
        if (thread_busy && thread_busy[i] >= 0)
            row->busy = thread_busy[i];
        row->blocking = now->blocking =
            !t->exited && t->current_id != 0 &&
            row->unswitched_ns >= m->block_threshold_ns && row->busy >= 0.5;
    }
}

/* A busy thread blocks only if it has another greenlet to block: one
 * running alone (the main greenlet of a plain program, say) is not
 * flagged. Counts the live greenlets of each thread (`threads`: the
 * history, sorted by serial) and clears `blocking` where it is alone. */
static void only_with_others_to_block(const gl_monitor_snapshot *s,
                                      struct thread_history *threads,
                                      gltop_thread_row *rows)
{
    for (size_t i = 0; i < s->greenlet_count; i++) {
        struct thread_history key = {.serial = s->greenlets[i].thread_serial};
        struct thread_history *thread = bsearch(
            &key, threads, s->thread_count, sizeof key, by_thread_serial);
        if (thread && s->greenlets[i].state != GL_STATE_DEAD)
            thread->alive++;
    }
    for (size_t i = 0; i < s->thread_count; i++) {
        struct thread_history key = {.serial = rows[i].thread->serial};
        struct thread_history *thread = bsearch(
            &key, threads, s->thread_count, sizeof key, by_thread_serial);
        if (thread && thread->alive < 2)
            thread->blocking = 0;
        rows[i].blocking = thread && thread->blocking;
    }
}

/* The flags of greenlet g of the new sample; `threads` is its thread
 * history, sorted by serial. */
static unsigned flags_of(const gl_monitor_snapshot *s,
                         const struct thread_history *threads,
                         const gl_monitor_greenlet_view *g)
{
    unsigned flags = g->has_hazard ? GLTOP_FLAG_HAZARD : 0;
    struct thread_history key = {.serial = g->thread_serial};
    const struct thread_history *thread =
        bsearch(&key, threads, s->thread_count, sizeof key, by_thread_serial);
    if (g->state == GL_STATE_RUNNING && thread && thread->blocking)
        flags |= GLTOP_FLAG_BLOCKING;
    return flags;
}

int gltop_model_update(gltop_model *model, gl_monitor_snapshot *snapshot,
                       uint64_t now_ns, const double *thread_busy)
{
    size_t n = snapshot->greenlet_count, t = snapshot->thread_count;
    struct derived d;
    if (derived_allocate(&d, n, t) != 0) {
        derived_free(&d);
        gl_monitor_snapshot_free(snapshot);
        return GL_ENOMEM;
    }
    /* A publication's clock that goes back (only a hostile segment's
     * does) is held where it was, so that no duration underflows. */
    if (model->snapshot && now_ns < model->sampled_ns)
        now_ns = model->sampled_ns;
    double seconds = model->snapshot && now_ns > model->sampled_ns
                         ? (double)(now_ns - model->sampled_ns) / 1e9
                         : 0;
    update_threads(model, snapshot, now_ns, seconds, thread_busy,
                   d.thread_history, d.threads);
    qsort(d.thread_history, t, sizeof *d.thread_history, by_thread_serial);
    only_with_others_to_block(snapshot, d.thread_history, d.threads);
    for (size_t i = 0; i < n; i++)
        d.by_id[i] = (struct id_entry){snapshot->greenlets[i].id, i};
    qsort(d.by_id, n, sizeof *d.by_id, by_entry_id);
    for (size_t k = 1; k < n; k++)
        if (d.by_id[k].id == d.by_id[k - 1].id) {
            /* Ids are never reused in a process: only a corrupt segment
             * says so, and no row could tell the two apart. */
            derived_free(&d);
            gl_monitor_snapshot_free(snapshot);
            return GL_ECORRUPT;
        }
    /* In id order, the new history and the old one are matched by a
     * merge: `next` is the first old entry not below the id at hand. */
    size_t known = model->snapshot ? model->snapshot->greenlet_count : 0;
    size_t next = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = d.by_id[k].index;
        const gl_monitor_greenlet_view *g = &snapshot->greenlets[i];
        while (next < known && model->d.history[next].id < g->id)
            next++;
        const struct history *before =
            next < known && model->d.history[next].id == g->id
                ? &model->d.history[next]
                : NULL;
        struct history *now = &d.history[k];
        *now = (struct history){g->id, g->switches, UINT64_MAX};
        d.rates[i] = -1;
        if (before && seconds > 0 && g->switches >= before->switches)
            d.rates[i] = (double)(g->switches - before->switches) / seconds;
        /* Seen running, or switched since the sample before; or new
         * since then and already started: it ran in between. */
        if (g->state == GL_STATE_RUNNING ||
            (before && g->switches != before->switches) ||
            (!before && model->snapshot && g->switches > 0))
            now->last_ran_ns = now_ns;
        else if (before)
            now->last_ran_ns = before->last_ran_ns;
        d.idle[i] = now->last_ran_ns == UINT64_MAX ? UINT64_MAX
                                                 : now_ns - now->last_ran_ns;
        d.flags[i] = flags_of(snapshot, d.thread_history, g);
    }
    model->process_rate = -1;
    if (model->snapshot && seconds > 0) {
        uint64_t now = total_switches(snapshot);
        uint64_t then = total_switches(model->snapshot);
        if (now >= then)
            model->process_rate = (double)(now - then) / seconds;
        if (now != then) {
            model->last_switch_ns = now_ns;
            model->switch_seen = 1;
        } else if (model->last_switch_ns == UINT64_MAX)
            model->last_switch_ns = model->sampled_ns; /* none since */
    }
    gl_monitor_snapshot_free(model->snapshot);
    derived_free(&model->d);
    if (!model->snapshot)
        model->first_sampled_ns = now_ns;
    model->snapshot = snapshot;
    model->sampled_ns = now_ns;
    model->d = d;
    return rebuild_rows(model);
}

/* ----------------------------------------------------------------- view */

int gltop_model_set_tree(gltop_model *model, int tree)
{
    model->tree = tree != 0;
    return rebuild_rows(model);
}

int gltop_model_set_sort(gltop_model *model, gltop_column column,
                         int descending)
{
    if ((unsigned)column >= GLTOP_COLUMNS)
        return GL_EINVAL;
    model->column = column;
    model->descending = descending != 0;
    return rebuild_rows(model);
}

int gltop_model_set_filter(gltop_model *model, const char *text)
{
    char *copy = text && *text ? strdup(text) : NULL;
    if (text && *text && !copy)
        return GL_ENOMEM;
    free(model->filter);
    model->filter = copy;
    return rebuild_rows(model);
}

size_t gltop_model_row_count(const gltop_model *model)
{
    return model->row_count;
}

const gltop_row *gltop_model_row(const gltop_model *model, size_t index)
{
    return index < model->row_count ? &model->rows[index] : NULL;
}

const gl_monitor_snapshot *gltop_model_snapshot(const gltop_model *model)
{
    return model->snapshot;
}

double gltop_model_process_rate(const gltop_model *model)
{
    return model->process_rate;
}

uint64_t gltop_model_since_last_switch(const gltop_model *model,
                                       int *at_least)
{
    if (at_least)
        *at_least = !model->switch_seen;
    return model->last_switch_ns == UINT64_MAX
               ? UINT64_MAX
               : model->sampled_ns - model->last_switch_ns;
}

uint64_t gltop_model_watched_ns(const gltop_model *model)
{
    return model->sampled_ns - model->first_sampled_ns;
}

size_t gltop_model_thread_count(const gltop_model *model)
{
    return model->snapshot ? model->snapshot->thread_count : 0;
}

const gltop_thread_row *gltop_model_thread(const gltop_model *model,
                                           size_t index)
{
    return index < gltop_model_thread_count(model) ? &model->d.threads[index]
                                                   : NULL;
}

size_t gltop_model_find_row(const gltop_model *model, uint64_t id)
{
    for (size_t i = 0; i < model->row_count; i++)
        if (model->rows[i].greenlet->id == id)
            return i;
    return SIZE_MAX;
}

void gltop_model_set_block_threshold(gltop_model *model, uint64_t ns)
{
    model->block_threshold_ns = ns;
}

int gltop_model_tree(const gltop_model *model)
{
    return model->tree;
}

gltop_column gltop_model_sort(const gltop_model *model, int *descending)
{
    if (descending)
        *descending = model->descending;
    return model->column;
}

const char *gltop_model_filter(const gltop_model *model)
{
    return model->filter ? model->filter : "";
}

int gltop_model_greenlet(const gltop_model *model, uint64_t id,
                         gltop_row *out)
{
    size_t count = model->snapshot ? model->snapshot->greenlet_count : 0;
    size_t g = find_index(model->d.by_id, count, id);
    if (g == SIZE_MAX)
        return 0;
    *out = (gltop_row){&model->snapshot->greenlets[g], 0, model->d.rates[g],
                       model->d.idle[g], model->d.flags[g]};
    return 1;
}

void gltop_model_totals(const gltop_model *model, gltop_totals *out)
{
    *out = (gltop_totals){0};
    const gl_monitor_snapshot *s = model->snapshot;
    if (!s)
        return;
    for (size_t i = 0; i < s->greenlet_count; i++)
        out->by_state[s->greenlets[i].state & 3]++;
    out->alive = s->greenlet_count - out->by_state[GL_STATE_DEAD];
    for (size_t i = 0; i < s->thread_count; i++) {
        out->heap_peak_bound += s->threads[i].saved_bytes_peak;
        out->blocking += model->d.threads[i].blocking;
    }
    out->heap = s->process_saved_bytes;
}
