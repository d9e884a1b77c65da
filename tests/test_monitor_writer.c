/*
 * test_monitor_writer.c -- the monitor segment as this process writes it
 * (src/monitor.c), read back through the reader library (inspect/), as
 * another process would: it holds exactly what the registry holds, a
 * runtime's descriptions and answers reach the reader, it grows with the
 * greenlets, it is off when the environment says so, a forked child makes
 * its own, and nonsense in the reader area does not disturb it.
 * Native builds only (GL_TEST_HAVE_INSPECT), like test_monitor_reader.c.
 */
#ifdef GL_TEST_HAVE_INSPECT
#define _GNU_SOURCE
#include "glengine.h"
#include "glmonitor.h"
#include "monitor_layout.h"
#include "runner.h"
#include "stack_pattern.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Greenlets suspended at different depths, so that their heap bytes
 * differ; returned through `out`. */
static void park_greenlets(gl_greenlet **out, size_t count)
{
    bounce_home = gl_current();
    for (size_t i = 0; i < count; i++) {
        CHECK_OK(gl_create(&out[i], bounce, (void *)(uintptr_t)i, NULL));
        CHECK_OK(gl_switch(out[i], (gl_message){NULL, 0}, NULL));
    }
}

static gl_monitor_snapshot *read_own_segment(void)
{
    gl_monitor_reader *reader;
    CHECK_OK(gl_monitor_open(&reader, getpid()));
    gl_monitor_snapshot *snapshot;
    int freshness = -1;
    CHECK_OK(gl_monitor_read(reader, 5000, &freshness, &snapshot));
    CHECK_EQ(freshness, 0);
    gl_monitor_close(reader);
    return snapshot;
}

/* Asks this process's segment for the stacks of greenlet `id`, as another
 * process would; returns the answer text (free() it). */
static char *ask_own_segment(uint64_t id, unsigned kinds, int *status)
{
    gl_monitor_reader *reader;
    CHECK_OK(gl_monitor_open(&reader, getpid()));
    char *answer;
    size_t size;
    CHECK_OK(gl_monitor_request(reader, id, kinds, 5000, &answer, &size,
                                status));
    CHECK_EQ(size, strlen(answer));
    gl_monitor_close(reader);
    return answer;
}

struct expected {
    gl_greenlet_info records[64];
    size_t count;
};

static int remember(const gl_greenlet_info *info, void *context)
{
    struct expected *e = context;
    CHECK(e->count < 64);
    e->records[e->count++] = *info;
    return 0;
}

static const gl_monitor_greenlet_view *find(const gl_monitor_snapshot *s,
                                            uint64_t id)
{
    for (size_t i = 0; i < s->greenlet_count; i++)
        if (s->greenlets[i].id == id)
            return &s->greenlets[i];
    return NULL;
}

TEST(monitor_segment_holds_what_the_registry_holds)
{
    gl_greenlet *parked[6];
    park_greenlets(parked, 6);
    gl_greenlet *fresh;
    CHECK_OK(gl_create(&fresh, bounce, NULL, NULL));
    CHECK(gl_monitor_enabled());

    struct expected expected = {.count = 0};
    gl_registry_walk(NULL, remember, &expected);
    gl_monitor_snapshot *s = read_own_segment();
    CHECK_EQ(s->pid, getpid());
    CHECK(strcmp(s->runtime, "C") == 0);
    CHECK_EQ(s->has_places, 0);
    CHECK_EQ(s->thread_count, 1);
    CHECK_EQ(s->threads[0].os_id, gettid());
    CHECK_EQ(s->threads[0].greenlets, 8);
    CHECK_EQ(s->process_saved_bytes, gl_process_saved_bytes());
    CHECK_EQ(s->greenlet_count, expected.count);
    for (size_t i = 0; i < expected.count; i++) {
        const gl_greenlet_info *want = &expected.records[i];
        const gl_monitor_greenlet_view *got = find(s, want->id);
        CHECK(got != NULL);
        CHECK_EQ(got->parent_id, want->parent_id);
        CHECK_EQ(got->state, want->state);
        CHECK_EQ(got->is_main, want->is_main);
        CHECK_EQ(got->saved_bytes, want->saved_bytes);
        CHECK_EQ(got->stack_pointer, want->stack_pointer);
        CHECK_EQ(got->switches, want->switches);
        CHECK_EQ(got->has_place, 0);
        CHECK(strcmp(got->name, "") == 0);
    }
    CHECK_EQ(find(s, gl_id(fresh))->state, GL_STATE_NEW);
    CHECK_EQ(find(s, gl_id(parked[3]))->state, GL_STATE_SUSPENDED);
    gl_monitor_snapshot_free(s);
}

/* A reader that keeps attaching sees every change: each fresh read is a
 * publication made after it asked. */
TEST(monitor_fresh_reads_follow_the_switches)
{
    gl_greenlet *parked[2];
    park_greenlets(parked, 2);
    gl_monitor_reader *reader;
    CHECK_OK(gl_monitor_open(&reader, getpid()));
    for (int round = 1; round <= 5; round++) {
        for (int i = 0; i < round; i++)
            CHECK_OK(gl_switch(parked[1], (gl_message){NULL, 0}, NULL));
        gl_monitor_snapshot *s;
        int freshness = -1;
        CHECK_OK(gl_monitor_read(reader, 5000, &freshness, &s));
        CHECK_EQ(freshness, 0);
        gl_greenlet_info info;
        gl_greenlet_get_info(parked[1], &info);
        CHECK_EQ(find(s, gl_id(parked[1]))->switches, info.switches);
        CHECK_EQ(find(s, gl_id(parked[0]))->switches, 1);
        CHECK_EQ(s->threads[0].switches, 4 + round * (round + 1));
        gl_monitor_snapshot_free(s);
    }
    gl_monitor_close(reader);
}

TEST(monitor_segment_grows_with_ten_thousand_greenlets)
{
    enum { COUNT = 10000 };
    gl_greenlet **many = malloc(COUNT * sizeof *many);
    CHECK(many != NULL);
    for (size_t i = 0; i < COUNT; i++)
        CHECK_OK(gl_create(&many[i], bounce, NULL, NULL));
    gl_monitor_snapshot *s = read_own_segment();
    CHECK_EQ(s->greenlet_count, COUNT + 1);
    gl_monitor_snapshot_free(s);
    for (size_t i = 0; i < COUNT / 2; i++)
        CHECK_OK(gl_destroy(many[i]));
    s = read_own_segment();
    CHECK_EQ(s->greenlet_count, COUNT / 2 + 1);
    gl_monitor_snapshot_free(s);
    free(many);
}

/* ---------------------------------------------------------- a runtime */

static atomic_int inside_runtime;

static int test_enter(void *context)
{
    (void)context;
    CHECK_EQ(atomic_fetch_add(&inside_runtime, 1), 0);
    return 0;
}

static void test_leave(void *context)
{
    (void)context;
    CHECK_EQ(atomic_fetch_sub(&inside_runtime, 1), 1);
}

static gl_monitor_text text(const char *s)
{
    return (gl_monitor_text){s, strlen(s)};
}

/* Every greenlet "runs" the same function in the same file, so the
 * strings area holds each once. */
static void test_describe(const gl_greenlet_info *info,
                          gl_monitor_place *place, void *context)
{
    (void)context;
    CHECK_EQ(atomic_load(&inside_runtime), 1);
    static char names[64][32];
    snprintf(names[info->id % 64], sizeof names[0], "worker-%llu",
             (unsigned long long)info->id);
    place->name = text(names[info->id % 64]);
    place->function = text("serve_forever");
    place->file = text("/srv/app/server_with_a_long_path_name.py");
    place->line = (unsigned)info->id + 100;
    if (info->is_main) {
        place->spawn_function = text("start\tthe\nprocess");
        place->spawn_file = text("launcher.c");
        place->spawn_line = 7;
    }
}

static void test_describe_thread(const gl_thread_info *info,
                                 gl_monitor_text *name, void *context)
{
    (void)info;
    (void)context;
    *name = text("the-test-thread");
}

static int test_answer(uint64_t id, unsigned kinds, char *buffer,
                       size_t capacity, size_t *size, void *context)
{
    (void)context;
    CHECK_EQ(atomic_load(&inside_runtime), 1);
    int n = snprintf(buffer, capacity, "note\tid %llu kinds %u\n",
                     (unsigned long long)id, kinds);
    *size = (size_t)n;
    return id == 999999 ? GL_MONITOR_ANSWER_NO_SUCH_GREENLET
                        : GL_MONITOR_ANSWER_OK;
}

static const gl_monitor_runtime test_runtime = {
    "TestRuntime 1.0", test_enter, test_leave, test_describe,
    test_describe_thread, test_answer, NULL};

TEST(monitor_runtime_describes_greenlets_and_answers_requests)
{
    gl_monitor_set_runtime(&test_runtime);
    gl_greenlet *parked[8];
    park_greenlets(parked, 8);
    gl_monitor_snapshot *s = read_own_segment();
    CHECK(strcmp(s->runtime, "TestRuntime 1.0") == 0);
    CHECK_EQ(s->has_places, 1);
    CHECK(strcmp(s->threads[0].name, "the-test-thread") == 0);
    CHECK_EQ(s->greenlet_count, 9);
    for (size_t i = 0; i < s->greenlet_count; i++) {
        const gl_monitor_greenlet_view *g = &s->greenlets[i];
        char name[32];
        snprintf(name, sizeof name, "worker-%llu", (unsigned long long)g->id);
        CHECK(strcmp(g->name, name) == 0);
        CHECK(g->has_place);
        CHECK(strcmp(g->function, "serve_forever") == 0);
        CHECK_EQ(g->line, g->id + 100);
        CHECK_EQ(g->has_spawn_site, g->is_main);
        if (g->is_main) /* control characters come out as '?' */
            CHECK(strcmp(g->spawn_function, "start?the?process") == 0);
    }
    gl_monitor_snapshot_free(s);

    int status;
    char *answer = ask_own_segment(gl_id(parked[2]), 3, &status);
    char want[64];
    snprintf(want, sizeof want, "note\tid %llu kinds 3\n",
             (unsigned long long)gl_id(parked[2]));
    CHECK(strcmp(answer, want) == 0);
    CHECK_EQ(status, GL_MONITOR_ANSWER_OK);
    free(answer);
    answer = ask_own_segment(999999, 1, &status);
    CHECK_EQ(status, GL_MONITOR_ANSWER_NO_SUCH_GREENLET);
    free(answer);
    gl_monitor_set_runtime(NULL);
}

TEST(monitor_without_a_runtime_answers_unavailable)
{
    gl_greenlet *parked[1];
    park_greenlets(parked, 1);
    int status;
    char *answer = ask_own_segment(gl_id(parked[0]), 3, &status);
    CHECK_EQ(status, GL_MONITOR_ANSWER_UNAVAILABLE);
    CHECK(strncmp(answer, "note\t", 5) == 0);
    free(answer);
}

TEST(monitor_is_off_when_the_environment_says_so)
{
    setenv("GREENLET_MONITOR", "off", 1);
    gl_greenlet *parked[2];
    park_greenlets(parked, 2);
    CHECK_EQ(gl_monitor_enabled(), 0);
    gl_monitor_reader *reader;
    CHECK_EQ(gl_monitor_open(&reader, getpid()), GL_ENOMONITOR);
}

/* How many monitor memfds this process has open; the fd number of one of
 * them in *fd_number (if not NULL and there is one). */
static int own_segments(int *fd_number)
{
    DIR *directory = opendir("/proc/self/fd");
    CHECK(directory != NULL);
    int found = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        char path[300], link[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", entry->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = '\0';
        if (!strstr(link, "memfd:" GL_MONITOR_MEMFD_NAME))
            continue;
        found++;
        if (fd_number)
            *fd_number = atoi(entry->d_name);
    }
    closedir(directory);
    return found;
}

/* Opens this process's segment for writing, as any process of the same
 * user could, after a read has made the monitor publish. */
static int open_own_segment(void)
{
    gl_monitor_snapshot_free(read_own_segment());
    int fd_number = -1;
    CHECK_EQ(own_segments(&fd_number), 1);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd_number);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    return fd;
}

TEST(monitor_fork_child_makes_its_own_segment)
{
    gl_greenlet *parked[3];
    park_greenlets(parked, 3);
    CHECK(gl_monitor_enabled());
    CHECK_EQ(own_segments(NULL), 1);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        /* The parent's segment is gone from the child... */
        CHECK_EQ(gl_monitor_enabled(), 0);
        CHECK_EQ(own_segments(NULL), 0);
        /* ...until it makes a greenlet, and with it a segment of its own. */
        gl_greenlet *mine;
        CHECK_OK(gl_create(&mine, bounce, NULL, NULL));
        CHECK_EQ(gl_monitor_enabled(), 1);
        CHECK_EQ(own_segments(NULL), 1);
        gl_monitor_snapshot *s = read_own_segment();
        CHECK_EQ(s->pid, getpid());
        CHECK(find(s, gl_id(mine)) != NULL);
        gl_monitor_snapshot_free(s);
        _exit(0);
    }
    int status;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    gl_monitor_snapshot *s = read_own_segment();
    CHECK_EQ(s->pid, getpid()); /* the child never wrote ours */
    CHECK_EQ(s->greenlet_count, 4);
    gl_monitor_snapshot_free(s);
}

/* A reader of the same user may write anything in the reader area: the
 * process must go on publishing correct data, and a heartbeat from the
 * far future must not keep it publishing. */
TEST(monitor_survives_nonsense_in_the_reader_area)
{
    gl_greenlet *parked[4];
    park_greenlets(parked, 4);
    gl_monitor_snapshot *s;
    int fd = open_own_segment();
    size_t reader_area = offsetof(gl_monitor_header, reader_heartbeat_ns);
    size_t area_size = sizeof(gl_monitor_header) - reader_area;
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        unsigned char junk[64];
        for (size_t i = 0; i < area_size; i++)
            junk[i] = (unsigned char)rand_r(&seed);
        CHECK_EQ(pwrite(fd, junk, area_size, (off_t)reader_area),
                 (ssize_t)area_size);
    }
    s = read_own_segment(); /* a real reader still gets the truth */
    CHECK_EQ(s->greenlet_count, 5);
    CHECK_EQ(s->process_saved_bytes, gl_process_saved_bytes());
    gl_monitor_snapshot_free(s);

    uint64_t far_future = UINT64_MAX - 1, publications_before;
    CHECK_EQ(pwrite(fd, &far_future, sizeof far_future,
                    (off_t)reader_area), (ssize_t)sizeof far_future);
    struct timespec pause = {0, 700 * 1000000}; /* > one refresh period */
    nanosleep(&pause, NULL);
    CHECK_EQ(pread(fd, &publications_before, 8,
                   offsetof(gl_monitor_header, publications)), 8);
    nanosleep(&pause, NULL);
    uint64_t publications_after;
    CHECK_EQ(pread(fd, &publications_after, 8,
                   offsetof(gl_monitor_header, publications)), 8);
    CHECK_EQ(publications_after, publications_before);
    close(fd);
}

/* The rest of the segment is no more trusted than the reader area: the
 * file cannot be cut short under the process's mapping, and offsets and
 * sequence counts written over the header are never read back. */
TEST(monitor_trusts_nothing_it_wrote_into_the_segment)
{
    gl_greenlet *parked[3];
    park_greenlets(parked, 3);
    gl_monitor_snapshot *s;
    int fd = open_own_segment();
    CHECK(ftruncate(fd, 0) < 0 && errno == EPERM);

    gl_monitor_header header;
    CHECK_EQ(pread(fd, &header, sizeof header, 0), (ssize_t)sizeof header);
    header.answer_offset = (uint64_t)1 << 44;
    header.answer_capacity = UINT64_MAX - 5;
    header.publish_sequence = 1;
    header.answer_sequence = 7;
    header.publications = UINT64_MAX;
    header.reader_heartbeat_ns = 0;
    CHECK_EQ(pwrite(fd, &header, sizeof header, 0), (ssize_t)sizeof header);
    /* Put the two offsets back for the reader's sake (it refuses them
     * otherwise), and ask: the process must answer where it always does. */
    uint64_t answer_offset = 4096, answer_capacity = GL_MONITOR_ANSWER_CAPACITY;
    CHECK_EQ(pwrite(fd, &answer_offset, 8,
                    offsetof(gl_monitor_header, answer_offset)), 8);
    CHECK_EQ(pwrite(fd, &answer_capacity, 8,
                    offsetof(gl_monitor_header, answer_capacity)), 8);
    int status;
    char *answer = ask_own_segment(gl_id(parked[1]), 3, &status);
    CHECK_EQ(status, GL_MONITOR_ANSWER_UNAVAILABLE);
    free(answer);
    s = read_own_segment();
    CHECK_EQ(s->greenlet_count, 4);
    CHECK(s->publications < 100); /* its own count, not what we wrote */
    gl_monitor_snapshot_free(s);
    close(fd);
}
#endif /* GL_TEST_HAVE_INSPECT */
