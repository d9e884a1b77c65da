/*
 * unswitchable.c -- greenlet._greenlet.UnswitchableGreenlet, upstream
 * greenlet 3.x's test helper: a greenlet whose switches can be made to
 * fail. force_switch_error makes a switch into it raise SystemError before
 * anything moves (as a failed stack switch does, and the greenlet stays
 * usable); force_slp_switch_error makes it end the process, as a stack
 * switch that failed halfway must.
 */
#include "binding.h"

static PyObject *get_flag(PyGreenlet *self, void *which)
{
    unsigned flag = (unsigned)(uintptr_t)which;
    return PyBool_FromLong((self->pimpl->forced_failure & flag) != 0);
}

static int set_flag(PyGreenlet *self, PyObject *value, void *which)
{
    unsigned flag = (unsigned)(uintptr_t)which;
    if (!value) {
        PyErr_Format(PyExc_AttributeError, "Cannot delete %s",
                     flag == GL_PY_FAIL_SWITCH ? "force_switch_error"
                                               : "force_slp_switch_error");
        return -1;
    }
    int on = PyObject_IsTrue(value);
    if (on < 0)
        return -1;
    if (on)
        self->pimpl->forced_failure |= flag;
    else
        self->pimpl->forced_failure &= ~flag;
    return 0;
}

static PyGetSetDef unswitchable_getset[] = {
    {"force_switch_error", (getter)get_flag, (setter)set_flag, NULL,
     (void *)(uintptr_t)GL_PY_FAIL_SWITCH},
    {"force_slp_switch_error", (getter)get_flag, (setter)set_flag, NULL,
     (void *)(uintptr_t)GL_PY_FAIL_STACK_SWITCH},
    {NULL, NULL, NULL, NULL, NULL}};

static PyTypeObject unswitchable_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name =
        "greenlet._greenlet.UnswitchableGreenlet",
    .tp_basicsize = sizeof(PyGreenlet),
    /* The collector's flag and functions come from the base. */
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Undocumented internal class",
    .tp_getset = unswitchable_getset,
};

int gl_py_unswitchable_init(PyObject *module)
{
    unswitchable_type.tp_base = &PyGreenlet_Type;
    if (PyType_Ready(&unswitchable_type) < 0)
        return -1;
    Py_INCREF(&unswitchable_type);
    if (PyModule_AddObject(module, "UnswitchableGreenlet",
                           (PyObject *)&unswitchable_type) < 0) {
        Py_DECREF(&unswitchable_type);
        return -1;
    }
    return 0;
}

int gl_py_forced_failure(PyGreenlet *target)
{
    if (target->pimpl->forced_failure & GL_PY_FAIL_STACK_SWITCH)
        Py_FatalError("greenlet: Failed low-level slp_switch(). The stack "
                      "is probably corrupt.");
    PyErr_SetString(PyExc_SystemError,
                    gl_state_of(target->pimpl->record) == GL_STATE_NEW
                        ? "Failed to switch stacks into a greenlet for the "
                          "first time."
                        : "Failed to switch stacks into a running greenlet.");
    return -1;
}
