/*
 * stack_hazards.c -- a CPython extension that makes the hazard of stack
 * copying on purpose, the ways extensions meet it, for the hazard audit's
 * tests (tests/python/test_hazard_audit.py builds it):
 *
 *   keep_and_call(f)      a global keeps a pointer to a stack buffer while
 *                         f runs (and switches away): stack_hazards_kept
 *   register_and_call(f)  a stack-allocated callback record is registered
 *                         in a global table while f runs, for fire() to
 *                         call later, from whatever greenlet: the table is
 *                         stack_hazards_registry
 *   fire()                calls the registered callbacks, which write into
 *                         their records: through a stale pointer if the
 *                         registering greenlet is suspended
 *
 * Its globals are exported (not static) so that the audit can name them
 * through the dynamic symbol table.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

char *stack_hazards_kept;

struct callback_record {
    void (*callback)(struct callback_record *record);
    long calls;
    char padding[48];
};

struct callback_record *stack_hazards_registry[4];

static void count_a_call(struct callback_record *record)
{
    record->calls++;
}

static PyObject *keep_and_call(PyObject *module, PyObject *function)
{
    (void)module;
    char buffer[64];
    memset(buffer, 'k', sizeof buffer);
    stack_hazards_kept = buffer;
    PyObject *result = PyObject_CallNoArgs(function);
    stack_hazards_kept = NULL;
    return result;
}

static PyObject *register_and_call(PyObject *module, PyObject *function)
{
    (void)module;
    struct callback_record record = {count_a_call, 0, {0}};
    size_t slot = 0;
    while (slot < 4 && stack_hazards_registry[slot])
        slot++;
    if (slot == 4)
        return PyErr_Format(PyExc_RuntimeError, "the registry is full");
    stack_hazards_registry[slot] = &record;
    PyObject *result = PyObject_CallNoArgs(function);
    stack_hazards_registry[slot] = NULL;
    if (!result)
        return NULL;
    Py_DECREF(result);
    return PyLong_FromLong(record.calls);
}

static PyObject *fire(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    long fired = 0;
    for (size_t slot = 0; slot < 4; slot++)
        if (stack_hazards_registry[slot]) {
            stack_hazards_registry[slot]->callback(
                stack_hazards_registry[slot]);
            fired++;
        }
    return PyLong_FromLong(fired);
}

static PyMethodDef methods[] = {
    {"keep_and_call", keep_and_call, METH_O, NULL},
    {"register_and_call", register_and_call, METH_O, NULL},
    {"fire", fire, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT,
                                        "stack_hazards", NULL, -1, methods};

PyMODINIT_FUNC PyInit_stack_hazards(void)
{
    return PyModule_Create(&definition);
}
