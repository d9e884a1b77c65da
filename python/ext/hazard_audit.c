/*
 * hazard_audit.c -- the hazard scan (inspect/hazard_scan.c) for Python
 * and for the monitor: greenlet.inspect.audit() calls _hazard_scan(), and
 * a tool's audit request (monitor_runtime.c) calls gl_py_hazard_audit(),
 * both under the GIL, which keeps every thread's greenlets from switching
 * while memory is read. The words that CPython and this binding keep
 * pointing into C stacks, and handle correctly, are left out. Each hit is
 * given the C frame of its greenlet whose locals it points into.
 *
 * The greenlets hit by the last audit, whoever asked for it, are
 * remembered: the monitor publishes them with the hazard flag (H in
 * gltop) until an audit finds them clean.
 */
#include "binding.h"
#include "glinspect.h"

/* The known holders, sorted, for a binary search per candidate hit: words
 * (addresses) and blocks of the interpreter's frame memory (regions,
 * [start, end) pairs sorted by start). Blocks never overlap. */
typedef struct known_holders {
    uintptr_t *addresses;
    size_t count, capacity;
    uintptr_t (*regions)[2];
    size_t region_count, region_capacity;
    int failed;
} known_holders;

/* Room for one more item of `size` bytes in *items (count, capacity). */
static int grow(void *items, size_t count, size_t *capacity, size_t size)
{
    if (count < *capacity)
        return 0;
    size_t bigger = *capacity ? 2 * *capacity : 16;
    void *moved = PyMem_Realloc(*(void **)items, bigger * size);
    if (!moved)
        return -1;
    *(void **)items = moved;
    *capacity = bigger;
    return 0;
}

static void remember(const void *address, void *context)
{
    known_holders *known = context;
    if (grow(&known->addresses, known->count, &known->capacity,
             sizeof *known->addresses) < 0) {
        known->failed = 1;
        return;
    }
    known->addresses[known->count++] = (uintptr_t)address;
}

static void remember_region(const void *start, size_t size, void *context)
{
    known_holders *known = context;
    if (grow(&known->regions, known->region_count, &known->region_capacity,
             sizeof *known->regions) < 0) {
        known->failed = 1;
        return;
    }
    known->regions[known->region_count][0] = (uintptr_t)start;
    known->regions[known->region_count++][1] = (uintptr_t)start + size;
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static int in_a_region(const known_holders *known, uintptr_t holder)
{
    size_t low = 0, high = known->region_count; /* the first start > holder */
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (known->regions[middle][0] <= holder)
            low = middle + 1;
        else
            high = middle;
    }
    return low > 0 && holder < known->regions[low - 1][1];
}

static int is_known(uintptr_t holder, void *context)
{
    const known_holders *known = context;
    if (in_a_region(known, holder))
        return 1;
    return known->count && bsearch(&holder, known->addresses, known->count,
                                   sizeof holder, by_address) != NULL;
}

/* ---------------------------------------------------- flagged greenlets */

static uint64_t *flagged;      /* ids hit by the last audit, sorted */
static size_t flagged_count;

static int by_id(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void remember_flagged(const gl_py_hazard *hits, size_t count)
{
    uint64_t *ids = count ? PyMem_Malloc(count * sizeof *ids) : NULL;
    if (count && !ids)
        return; /* keep the last ones: a flag late beats no audit */
    for (size_t i = 0; i < count; i++)
        ids[i] = hits[i].hit.greenlet_id;
    if (count)
        qsort(ids, count, sizeof *ids, by_id);
    PyMem_Free(flagged);
    flagged = ids;
    flagged_count = count;
}

int gl_py_hazard_flagged(uint64_t greenlet_id)
{
    return flagged_count && bsearch(&greenlet_id, flagged, flagged_count,
                                    sizeof greenlet_id, by_id) != NULL;
}

/* ---------------------------------------------------------------- audit */

struct owner_lookup {
    uint64_t id;
    void *binding;
};

static int match_owner(const gl_greenlet_info *info, void *context)
{
    struct owner_lookup *lookup = context;
    if (info->id != lookup->id || info->state != GL_STATE_SUSPENDED)
        return 0;
    lookup->binding = info->binding;
    return 1;
}

PyGreenlet *gl_py_greenlet_of(uint64_t id)
{
    struct owner_lookup lookup = {id, NULL};
    gl_registry_walk(NULL, match_owner, &lookup);
    PyGreenlet *greenlet = lookup.binding;
    return greenlet && greenlet->pimpl && greenlet->pimpl->record ? greenlet
                                                                 : NULL;
}

/* The C frame of greenlet `id` whose locals hold `address`: the innermost
 * frame whose stack pointer is at or below it (frames come innermost
 * first, their stack pointers rising). */
static void find_owning_frame(gl_py_hazard *hazard)
{
    PyGreenlet *greenlet = gl_py_greenlet_of(hazard->hit.greenlet_id);
    if (!greenlet)
        return;
    enum { FRAMES = 128 };
    gl_native_frame *frames = PyMem_Malloc(FRAMES * sizeof *frames);
    size_t count = 0;
    if (frames &&
        gl_native_backtrace(greenlet->pimpl->record, frames, FRAMES,
                            &count) >= 0)
        for (size_t i = 0; i < count; i++) {
            if (!frames[i].sp || frames[i].sp > hazard->hit.target)
                break;
            hazard->frame = frames[i];
            hazard->has_frame = 1;
        }
    if (frames) /* their stack pointers: not to be left for the audit */
        explicit_bzero(frames, count * sizeof *frames);
    PyMem_Free(frames);
}

/* A suspended greenlet's saved interpreter state points into its own C
 * stack (cpython_compat.c says where): restored with it at its next
 * switch. */
static void remember_saved_states(known_holders *known)
{
    size_t count;
    PyGreenlet **greenlets = gl_py_suspended_greenlets(0, &count);
    for (size_t i = 0; i < count; i++) {
        gl_py_impl *impl = greenlets[i]->pimpl;
        if (impl) {
            gl_py_state_visit_stack_holders(&impl->state, remember, known);
            gl_py_state_visit_frame_memory(&impl->state, remember_region,
                                           known);
        }
        Py_DECREF(greenlets[i]);
    }
    PyMem_RawFree(greenlets);
}

void gl_py_hazards_free(gl_py_hazard *hits, size_t count)
{
    if (hits) /* they hold stack addresses: not to be left for the audit */
        explicit_bzero(hits, count * sizeof *hits);
    PyMem_Free(hits);
}

int gl_py_hazard_audit(gl_py_hazard **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    known_holders known = {0};
    gl_py_visit_stack_holders(remember, &known);
    gl_py_visit_frame_memory(remember_region, &known);
    remember_saved_states(&known);
    int code = GL_ENOMEM;
    gl_hazard_hit *hits;
    size_t found;
    if (!known.failed) {
        if (known.count)
            qsort(known.addresses, known.count, sizeof *known.addresses,
                  by_address);
        if (known.region_count) /* by start: the first word of each pair */
            qsort(known.regions, known.region_count, sizeof *known.regions,
                  by_address);
        code = gl_hazard_scan(is_known, &known, &hits, &found);
    }
    PyMem_Free(known.addresses);
    PyMem_Free(known.regions);
    if (code)
        return code;
    gl_py_hazard *hazards = PyMem_Calloc(found + 1, sizeof *hazards);
    for (size_t i = 0; hazards && i < found; i++) {
        hazards[i].hit = hits[i];
        find_owning_frame(&hazards[i]);
    }
    gl_hazard_hits_free(hits, found);
    if (!hazards)
        return GL_ENOMEM;
    remember_flagged(hazards, found);
    *out = hazards;
    *count = found;
    return 0;
}

static PyObject *hit_as_tuple(const gl_py_hazard *hazard)
{
    const gl_hazard_hit *hit = &hazard->hit;
    PyObject *frame = Py_None;
    if (hazard->has_frame)
        frame = Py_BuildValue(
            "{s:s,s:K,s:s,s:K,s:K}", "function", hazard->frame.function,
            "offset", (unsigned long long)hazard->frame.offset, "object",
            hazard->frame.object, "ip", (unsigned long long)hazard->frame.ip,
            "sp", (unsigned long long)hazard->frame.sp);
    else
        Py_INCREF(frame);
    if (!frame)
        return NULL;
    return Py_BuildValue("(KKKLKKiLssKNiKn)", (unsigned long long)hit->holder,
                         (unsigned long long)hit->target,
                         (unsigned long long)hit->greenlet_id,
                         (long long)hit->thread_os_id,
                         (unsigned long long)hit->region_low,
                         (unsigned long long)hit->region_high,
                         hit->holder_kind,
                         (long long)hit->holder_thread_os_id, hit->object,
                         hit->symbol, (unsigned long long)hit->symbol_offset,
                         frame, hit->saved,
                         (unsigned long long)hit->allocation,
                         (Py_ssize_t)hit->allocation_size);
}

PyObject *gl_py_hazard_scan(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    gl_py_hazard *hits;
    size_t count;
    int code = gl_py_hazard_audit(&hits, &count);
    if (code)
        return code == GL_ENOMEM ? PyErr_NoMemory()
                                 : PyErr_Format(PyExc_RuntimeError, "%s",
                                                gl_strerror(code));
    PyObject *list = PyList_New((Py_ssize_t)count);
    for (size_t i = 0; list && i < count; i++) {
        PyObject *item = hit_as_tuple(&hits[i]);
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, item);
    }
    gl_py_hazards_free(hits, count);
    return list;
}
