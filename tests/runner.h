/*
 * runner.h -- the C test harness: how a test is declared and what it may
 * check. Tests live one area to a file (test_*.c) and are listed in
 * test_list.h; runner.c runs each in a process of its own, with a timeout,
 * so one crash or hang fails one test and names it.
 */
#ifndef GL_TEST_RUNNER_H
#define GL_TEST_RUNNER_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define TEST(name)                                                            \
    void test_##name(void);                                                   \
    void test_##name(void)

/* Report and end the test process. */
__attribute__((noreturn, format(printf, 3, 4))) void
test_fail(const char *file, int line, const char *format, ...);

#define CHECK(condition)                                                      \
    do {                                                                      \
        if (!(condition))                                                     \
            test_fail(__FILE__, __LINE__, "%s", #condition);                  \
    } while (0)

#define CHECK_EQ(actual, expected)                                            \
    do {                                                                      \
        long long check_actual_ = (long long)(actual);                        \
        long long check_expected_ = (long long)(expected);                    \
        if (check_actual_ != check_expected_)                                 \
            test_fail(__FILE__, __LINE__, "%s == %s: got %lld, expected %lld", \
                      #actual, #expected, check_actual_, check_expected_);    \
    } while (0)

/* An engine call that must succeed: names the error code if not. */
#define CHECK_OK(call)                                                        \
    do {                                                                      \
        int check_code_ = (call);                                             \
        if (check_code_ != 0)                                                 \
            test_fail(__FILE__, __LINE__, "%s failed: %s (%s)", #call,        \
                      gl_error_name(check_code_), gl_strerror(check_code_));  \
    } while (0)

/* Seconds a test may take, scaled by GL_TEST_TIMEOUT_SCALE (valgrind and
 * qemu runs set it). */
unsigned test_timeout_seconds(unsigned base);

#endif /* GL_TEST_RUNNER_H */
