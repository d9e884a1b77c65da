/*
 * greenlet.h -- the C API of the greenlet package, for extension modules.
 *
 * Binary compatible with the greenlet.h of greenlet 2.x: the same object
 * layout (so the same instance size, which Cython checks at import), the
 * same twelve slots of the capsule greenlet._C_API, in the same order, and
 * the same macro names. An extension compiled against greenlet 2.x works
 * with this package without recompiling.
 *
 * Use: call PyGreenlet_Import() once (it sets _PyGreenlet_API), then the
 * macros below.
 */
#ifndef Py_GREENLETOBJECT_H
#define Py_GREENLETOBJECT_H

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Kept for old code; it never changes. */
#define GREENLET_VERSION "1.0.0"

#ifndef GREENLET_MODULE
#define implementation_ptr_t void *
#endif

typedef struct _greenlet {
    PyObject_HEAD
    PyObject *weakreflist;
    PyObject *dict;
    implementation_ptr_t pimpl;
} PyGreenlet;

#define PyGreenlet_Check(op) (op && PyObject_TypeCheck(op, &PyGreenlet_Type))

/* Slots of the capsule. */
#define PyGreenlet_API_pointers 12
#define PyGreenlet_Type_NUM 0
#define PyExc_GreenletError_NUM 1
#define PyExc_GreenletExit_NUM 2
#define PyGreenlet_New_NUM 3
#define PyGreenlet_GetCurrent_NUM 4
#define PyGreenlet_Throw_NUM 5
#define PyGreenlet_Switch_NUM 6
#define PyGreenlet_SetParent_NUM 7
#define PyGreenlet_MAIN_NUM 8
#define PyGreenlet_STARTED_NUM 9
#define PyGreenlet_ACTIVE_NUM 10
#define PyGreenlet_GET_PARENT_NUM 11

#ifndef GREENLET_MODULE
#if defined(__GNUC__)
#define PyGreenlet_MAYBE_UNUSED __attribute__((unused))
#else
#define PyGreenlet_MAYBE_UNUSED
#endif
/* Each may go unused: an extension may take one API and not the other. */
static void **_PyGreenlet_API PyGreenlet_MAYBE_UNUSED = NULL;

#define PyGreenlet_Type (*(PyTypeObject *)_PyGreenlet_API[PyGreenlet_Type_NUM])
#define PyExc_GreenletError ((PyObject *)_PyGreenlet_API[PyExc_GreenletError_NUM])
#define PyExc_GreenletExit ((PyObject *)_PyGreenlet_API[PyExc_GreenletExit_NUM])

/* greenlet.greenlet(run, parent): a new reference. */
#define PyGreenlet_New                                                        \
    (*(PyGreenlet * (*)(PyObject * run, PyGreenlet * parent))                 \
         _PyGreenlet_API[PyGreenlet_New_NUM])
/* greenlet.getcurrent(): a new reference. */
#define PyGreenlet_GetCurrent                                                 \
    (*(PyGreenlet * (*)(void)) _PyGreenlet_API[PyGreenlet_GetCurrent_NUM])
/* g.throw(typ, val, tb); val and tb may be NULL. */
#define PyGreenlet_Throw                                                      \
    (*(PyObject * (*)(PyGreenlet * self, PyObject * typ, PyObject * val,      \
                      PyObject * tb)) _PyGreenlet_API[PyGreenlet_Throw_NUM])
/* g.switch(*args, **kwargs); args and kwargs may be NULL. */
#define PyGreenlet_Switch                                                     \
    (*(PyObject * (*)(PyGreenlet * greenlet, PyObject * args,                 \
                      PyObject * kwargs)) _PyGreenlet_API[PyGreenlet_Switch_NUM])
/* g.parent = new_parent: 0, or -1 with an exception set. */
#define PyGreenlet_SetParent                                                  \
    (*(int (*)(PyGreenlet * greenlet, PyGreenlet * nparent))                  \
         _PyGreenlet_API[PyGreenlet_SetParent_NUM])
/* g.parent as a new reference; NULL (maybe without an exception) if none. */
#define PyGreenlet_GetParent                                                  \
    (*(PyGreenlet * (*)(PyGreenlet *)) _PyGreenlet_API[PyGreenlet_GET_PARENT_NUM])
#define PyGreenlet_GET_PARENT PyGreenlet_GetParent
/* Is it a thread's main greenlet; has it started; is it started and not
 * dead? 1 or 0. */
#define PyGreenlet_MAIN                                                       \
    (*(int (*)(PyGreenlet *))_PyGreenlet_API[PyGreenlet_MAIN_NUM])
#define PyGreenlet_STARTED                                                    \
    (*(int (*)(PyGreenlet *))_PyGreenlet_API[PyGreenlet_STARTED_NUM])
#define PyGreenlet_ACTIVE                                                     \
    (*(int (*)(PyGreenlet *))_PyGreenlet_API[PyGreenlet_ACTIVE_NUM])

#define PyGreenlet_Import()                                                   \
    {                                                                         \
        _PyGreenlet_API = (void **)PyCapsule_Import("greenlet._C_API", 0);    \
    }

/* Watches on stack addresses (this package only: a capsule of its own,
 * which greenlet 2.x does not have). An extension that hands out the
 * address of a stack buffer, to be used after a switch, registers it:
 * while its greenlet is swapped out, hardware watchpoints catch writes
 * through it, with the writer's backtrace (greenlet.inspect.watch_writes).
 *   PyGreenlet_WatchImport()          sets _PyGreenlet_Watch_API; NULL
 *                                     (and an ImportError) without it
 *   PyGreenlet_WatchStack(address)    watches `address`, in the calling
 *                                     greenlet's stack: 0, or -1 with an
 *                                     exception (OSError: no hardware
 *                                     watchpoints here, or none free)
 *   PyGreenlet_UnwatchStack(address)  stops watching it */
static void **_PyGreenlet_Watch_API PyGreenlet_MAYBE_UNUSED = NULL;
#define PyGreenlet_WatchImport()                                              \
    (_PyGreenlet_Watch_API =                                                  \
         (void **)PyCapsule_Import("greenlet._watch_C_API", 0))
#define PyGreenlet_WatchStack                                                 \
    (*(int (*)(void *))_PyGreenlet_Watch_API[0])
#define PyGreenlet_UnwatchStack                                               \
    (*(void (*)(void *))_PyGreenlet_Watch_API[1])
#endif /* GREENLET_MODULE */

#ifdef __cplusplus
}
#endif
#endif /* Py_GREENLETOBJECT_H */
