/*
 * runner.c -- runs the C tests listed in test_list.h.
 *
 *   engine-tests            every test, each in a child process
 *   engine-tests NAME...    only those (still one child each)
 *   engine-tests --list     the names
 *   engine-tests --inline NAME   run one in this process (for gdb)
 *
 * A test passes when its process exits with status 0 within its time
 * limit (GL_TEST_TIMEOUT seconds, default 60, times GL_TEST_TIMEOUT_SCALE).
 * The last line is "N passed, N failed"; the exit status is 1 if any
 * failed.
 */
#include "runner.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define GL_TEST_LEAK_CHECK 1
#endif

#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_DECLARE(name) void test_##name(void);
#include "test_list.h"
#undef TEST_DECLARE

struct test_entry {
    const char *name;
    void (*run)(void);
};

static const struct test_entry tests[] = {
#define TEST_DECLARE(name) {#name, test_##name},
#include "test_list.h"
#undef TEST_DECLARE
};
#define TEST_COUNT (sizeof tests / sizeof tests[0])

static const char *running_test = "?";

void test_fail(const char *file, int line, const char *format, ...)
{
    va_list arguments;
    fprintf(stderr, "FAIL %s: %s:%d: ", running_test, file, line);
    va_start(arguments, format);
    vfprintf(stderr, format, arguments);
    va_end(arguments);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
}

unsigned test_timeout_seconds(unsigned base)
{
    const char *scale = getenv("GL_TEST_TIMEOUT_SCALE");
    unsigned factor = scale ? (unsigned)atoi(scale) : 1;
    return base * (factor ? factor : 1);
}

/* Runs one test in a child; returns 1 if it passed. */
static int run_in_child(const struct test_entry *test)
{
    const char *limit = getenv("GL_TEST_TIMEOUT");
    unsigned seconds = test_timeout_seconds(limit ? (unsigned)atoi(limit) : 60);
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 0;
    }
    if (child == 0) {
        running_test = test->name;
        alarm(seconds);
        test->run();
        fflush(stdout);
#ifdef GL_TEST_LEAK_CHECK
        /* _exit skips LeakSanitizer's check at exit: ask for it here. */
        if (__lsan_do_recoverable_leak_check())
            _exit(1);
#endif
        _exit(0);
    }
    int status;
    while (waitpid(child, &status, 0) < 0)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok   %s\n", test->name);
        return 1;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        printf("FAIL %s: timed out after %u s\n", test->name, seconds);
    else if (WIFSIGNALED(status))
        printf("FAIL %s: killed by signal %d (%s)\n", test->name,
               WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        printf("FAIL %s: exit status %d\n", test->name, WEXITSTATUS(status));
    return 0;
}

static const struct test_entry *find_test(const char *name)
{
    for (size_t i = 0; i < TEST_COUNT; i++)
        if (strcmp(tests[i].name, name) == 0)
            return &tests[i];
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < TEST_COUNT; i++)
            puts(tests[i].name);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--inline") == 0) {
        const struct test_entry *test = find_test(argv[2]);
        if (!test) {
            fprintf(stderr, "no test named %s (see --list)\n", argv[2]);
            return 2;
        }
        running_test = test->name;
        test->run();
        return 0;
    }
    unsigned passed = 0, failed = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            const struct test_entry *test = find_test(argv[i]);
            if (!test) {
                fprintf(stderr, "no test named %s (see --list)\n", argv[i]);
                return 2;
            }
            run_in_child(test) ? passed++ : failed++;
        }
    } else {
        for (size_t i = 0; i < TEST_COUNT; i++)
            run_in_child(&tests[i]) ? passed++ : failed++;
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
