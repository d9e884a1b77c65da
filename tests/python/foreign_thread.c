/*
 * foreign_thread.c -- a C library for test_foreign_threads.py: a thread
 * that Python did not start calls a Python callback several times, as a
 * C library's worker thread calls back into Python through ctypes. Each
 * call makes and deletes a thread state (ctypes' callbacks run inside
 * PyGILState_Ensure/Release), so one OS thread runs Python under a new
 * thread state every time.
 */
#include <pthread.h>

typedef void callback(int call);

struct calls {
    callback *function;
    int count;
};

static void *make_calls(void *argument)
{
    struct calls *calls = argument;
    for (int i = 0; i < calls->count; i++)
        calls->function(i);
    return NULL;
}

/* Calls `function` with 0, 1, ... count-1 from a new thread; returns once
 * that thread has ended. 0, or -1 if it could not be started. */
int call_from_foreign_thread(callback *function, int count)
{
    struct calls calls = {function, count};
    pthread_t thread;
    if (pthread_create(&thread, NULL, make_calls, &calls) != 0)
        return -1;
    return pthread_join(thread, NULL) == 0 ? 0 : -1;
}
