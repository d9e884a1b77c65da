/*
 * hazard_audit.c -- the hazard scan (inspect/hazard_scan.c) for Python:
 * greenlet.inspect.audit() calls _hazard_scan() under the GIL, which keeps
 * every thread's greenlets from switching while memory is read, and passes
 * the words that CPython and this binding keep pointing into C stacks and
 * handle correctly, so that they are not reported.
 */
#include "binding.h"
#include "glinspect.h"

/* The known holders, sorted, for a binary search per candidate hit. */
typedef struct known_holders {
    uintptr_t *addresses;
    size_t count, capacity;
    int failed;
} known_holders;

static void remember(const void *address, void *context)
{
    known_holders *known = context;
    if (known->count == known->capacity) {
        size_t capacity = known->capacity ? 2 * known->capacity : 16;
        uintptr_t *bigger = PyMem_Realloc(known->addresses,
                                          capacity * sizeof *bigger);
        if (!bigger) {
            known->failed = 1;
            return;
        }
        known->addresses = bigger;
        known->capacity = capacity;
    }
    known->addresses[known->count++] = (uintptr_t)address;
}

static int by_address(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static int is_known(uintptr_t holder, void *context)
{
    const known_holders *known = context;
    return bsearch(&holder, known->addresses, known->count,
                   sizeof holder, by_address) != NULL;
}

static PyObject *hit_as_tuple(const gl_hazard_hit *hit)
{
    return Py_BuildValue("(KKKLKKissK)", (unsigned long long)hit->holder,
                         (unsigned long long)hit->target,
                         (unsigned long long)hit->greenlet_id,
                         (long long)hit->thread_os_id,
                         (unsigned long long)hit->region_low,
                         (unsigned long long)hit->region_high,
                         hit->holder_kind, hit->object, hit->symbol,
                         (unsigned long long)hit->symbol_offset);
}

PyObject *gl_py_hazard_scan(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    known_holders known = {0};
    gl_py_visit_stack_holders(remember, &known);
    if (known.failed) {
        PyMem_Free(known.addresses);
        return PyErr_NoMemory();
    }
    qsort(known.addresses, known.count, sizeof *known.addresses, by_address);
    gl_hazard_hit *hits;
    size_t count;
    int code = gl_hazard_scan(is_known, &known, &hits, &count);
    PyMem_Free(known.addresses);
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
    free(hits);
    return list;
}
