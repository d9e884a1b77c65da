/*
 * test_gltop_text.c -- what gltop writes, without a terminal: its number
 * formats, the cursor that the list, the picker and the panes share, and
 * the detail pane's lines for a greenlet (its saved region, flags, and
 * the stacks the process answered with, including odd answers), and the
 * batch output of strings that are not clean UTF-8.
 * Native builds only (GL_TEST_HAVE_INSPECT).
 */
#ifdef GL_TEST_HAVE_INSPECT
#include "batch.h"
#include "cursor.h"
#include "detail.h"
#include "format.h"
#include "gltop_snapshots.h"
#include "monitor_layout.h"
#include "runner.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_TEXT(actual, expected)                                          \
    do {                                                                      \
        const char *actual_ = (actual);                                       \
        if (strcmp(actual_, expected) != 0)                                   \
            test_fail(__FILE__, __LINE__, "\"%s\", expected \"%s\"", actual_, \
                      expected);                                              \
    } while (0)

static const char *bytes(uint64_t n)
{
    static char text[16];
    gltop_format_bytes(text, sizeof text, n);
    return text;
}

static const char *duration(uint64_t ns)
{
    static char text[16];
    gltop_format_duration(text, sizeof text, ns);
    return text;
}

static const char *rate(double r)
{
    static char text[16];
    gltop_format_rate(text, sizeof text, r);
    return text;
}

TEST(gltop_formats_fit_their_columns)
{
    CHECK_TEXT(bytes(0), "0");
    CHECK_TEXT(bytes(1023), "1023");
    CHECK_TEXT(bytes(1024), "1.0K");
    CHECK_TEXT(bytes(14540), "14.2K");
    CHECK_TEXT(bytes(300 * 1024), "300K");
    CHECK_TEXT(bytes(3 * 1024 * 1024 + 100 * 1024), "3.1M");
    CHECK_TEXT(bytes(UINT64_MAX), "16.0E");
    CHECK_TEXT(duration(UINT64_MAX), "-");
    CHECK_TEXT(duration(400000000), "0.4s");
    CHECK_TEXT(duration(12000000000ull), "12s");
    CHECK_TEXT(duration(423000000000ull), "7m03s");
    CHECK_TEXT(duration(5ull * 3600 * 1000000000 + 12ull * 60 * 1000000000),
               "5h12m");
    CHECK_TEXT(duration(3ull * 86400 * 1000000000 + 4ull * 3600 * 1000000000),
               "3d04h");
    CHECK(strlen(duration(UINT64_MAX - 1)) <= 6);
    CHECK_TEXT(rate(-1), "-");
    CHECK_TEXT(rate(9999), "9999");
    CHECK_TEXT(rate(12345), "12.3K");
    CHECK_TEXT(rate(512000), "512K");
    CHECK_TEXT(rate(1234567), "1.2M");
    CHECK_TEXT(gltop_state_name(GL_STATE_SUSPENDED), "suspended");
    CHECK_TEXT(gltop_state_name((gl_state)9), "?");
    char flags[8];
    gltop_format_flags(flags, sizeof flags,
                       GLTOP_FLAG_HAZARD | GLTOP_FLAG_BLOCKING);
    CHECK_TEXT(flags, "HB");
}

TEST(gltop_cursor_keeps_the_selection_in_sight)
{
    gltop_cursor c = {0};
    gltop_cursor_move(&c, -3, 100);
    CHECK_EQ(c.selected, 0);
    gltop_cursor_move(&c, 25, 100);
    gltop_cursor_fit(&c, 100, 10);
    CHECK_EQ(c.selected, 25);
    CHECK_EQ(c.top, 16); /* the selection on the last line shown */
    gltop_cursor_move(&c, -20, 100);
    gltop_cursor_fit(&c, 100, 10);
    CHECK_EQ(c.top, 5);
    gltop_cursor_move(&c, LONG_MAX, 100); /* End */
    gltop_cursor_fit(&c, 100, 10);
    CHECK_EQ(c.selected, 99);
    CHECK_EQ(c.top, 90);
    gltop_cursor_fit(&c, 40, 10); /* the list shrank under it */
    CHECK_EQ(c.selected, 39);
    CHECK_EQ(c.top, 30);
    gltop_cursor_fit(&c, 5, 10); /* all of it fits */
    CHECK_EQ(c.top, 0);
    gltop_cursor_move(&c, 1000, 5);
    CHECK_EQ(c.selected, 4);
    gltop_cursor_move(&c, -LONG_MAX, 5); /* Home */
    CHECK_EQ(c.selected, 0);
    gltop_cursor_move(&c, 1, 0);
    CHECK_EQ(c.selected, 0);
}

/* Whether some line of `d` contains `text`, of kind `kind`. */
static int has_line(const gltop_detail *d, gltop_line_kind kind,
                    const char *text)
{
    for (size_t i = 0; i < d->count; i++)
        if (d->lines[i].kind == kind && strstr(d->lines[i].text, text))
            return 1;
    return 0;
}

static const struct spec family[] = {
    {1, 0, GL_STATE_RUNNING, 4, 0, "main"},
    {2, 1, GL_STATE_SUSPENDED, 2, 0x300, "recv", GL_MONITOR_GREENLET_HAZARD,
     0x7ffc0000f000, 0x7ffc00010000},
};

TEST(gltop_detail_shows_the_saved_region_and_the_flags)
{
    gltop_model *model;
    CHECK_OK(gltop_model_create(&model));
    CHECK_OK(gltop_model_update(model, snapshot_of(family, 2), 1, NULL));
    gltop_detail d;
    CHECK_OK(gltop_detail_build(model, 2, NULL, &d));
    CHECK(has_line(&d, GLTOP_LINE_TEXT, "state       suspended"));
    CHECK(has_line(&d, GLTOP_LINE_TEXT, "parent      #1"));
    CHECK(has_line(&d, GLTOP_LINE_TEXT, "where       recv"));
    CHECK(has_line(&d, GLTOP_LINE_TEXT,
                   "whole   0x7ffc0000f000 - 0x7ffc00010000  4.0K"));
    CHECK(has_line(&d, GLTOP_LINE_TEXT,
                   "saved   0x7ffc0000f000 - 0x7ffc0000f300  768 (768 "
                   "bytes), copied to the heap"));
    CHECK(has_line(&d, GLTOP_LINE_TEXT,
                   "live    0x7ffc0000f300 - 0x7ffc00010000  3.2K"));
    CHECK(has_line(&d, GLTOP_LINE_ALERT, "H  the last hazard audit found"));
    CHECK(has_line(&d, GLTOP_LINE_NOTE, "not asked for yet"));
    gltop_detail_free(&d);

    /* Flagged H, with an audit answer: its hits are listed, others' not. */
    gltop_detail_stacks audited = {
        .id = 2,
        .audit = strdup(
            "hazard\t2\t0x601040\t0x7ffc0000f010\t0x7ffc0000f000\t"
            "0x7ffc0000f300\t/x/stack_hazards.so\tkept\t0x0\t"
            "keep_and_call\t0x40\t/x/stack_hazards.so\tsaved\n"
            "hazard\t2\t0x7f0000001010\t0x7ffc0000f310\t0x7ffc0000f300\t"
            "0x7ffc0000f800\t[heap allocation 0x7f0000001000, 64 bytes]\t"
            "\t0x0\tpoll\t0x10\t/x/libc.so\tlive\n"
            "hazard\t9\t0x601048\t0x7ffc0000f020\t0x7ffc0000f000\t"
            "0x7ffc0000f300\t/x/other.so\tother\t0x0\t\t0x0\t\tsaved\n"
            "hazard\t2\t0x601040\t0x7ffc0000f010\t0x7ffc0000f000\t"
            "0x7ffc0000f300\t/x/old.so\tkept\t0x0\t\t0x0\t\n"
            "hazard\ttoo few fields\n")};
    CHECK_OK(gltop_detail_build(model, 2, &audited, &d));
    CHECK(has_line(&d, GLTOP_LINE_ALERT,
                   "kept+0x0 (stack_hazards.so) holds 0x7ffc0000f010 "
                   "(saved+16), in keep_and_call()"));
    CHECK(has_line(&d, GLTOP_LINE_ALERT,
                   "0x7f0000001010 ([heap allocation 0x7f0000001000, 64 "
                   "bytes]) holds 0x7ffc0000f310 (live+16), in poll()"));
    /* A line of an older process, without the state: shown, as saved. */
    CHECK(has_line(&d, GLTOP_LINE_ALERT,
                   "kept+0x0 (old.so) holds 0x7ffc0000f010 (saved+16)"));
    CHECK(!has_line(&d, GLTOP_LINE_ALERT, "other"));
    gltop_detail_free(&d);
    gltop_detail_stacks_clear(&audited);

    CHECK_OK(gltop_detail_build(model, 1, NULL, &d));
    CHECK(has_line(&d, GLTOP_LINE_TEXT, "running, on its thread's stack"));
    CHECK(has_line(&d, GLTOP_LINE_TEXT, "no hazard flagged"));
    CHECK(has_line(&d, GLTOP_LINE_TEXT, "running: no switch in its thread"));
    gltop_detail_free(&d);

    CHECK_OK(gltop_detail_build(model, 77, NULL, &d));
    CHECK_EQ(d.count, 1);
    CHECK(has_line(&d, GLTOP_LINE_NOTE, "#77 is gone"));
    gltop_detail_free(&d);
    gltop_model_destroy(model);
}

TEST(gltop_detail_shows_the_answered_stacks_and_odd_answers)
{
    gltop_model *model;
    CHECK_OK(gltop_model_create(&model));
    CHECK_OK(gltop_model_update(model, snapshot_of(family, 2), 1, NULL));
    static const char answer[] =
        "python\trecv\t/usr/lib/socket.py\t663\n"
        "python\thandle\tserver.py\t12\n"
        "native\tgl__stack_switch\t0x25\t/x/_greenlet.so\t0x7f0000001234\n"
        "note\tcut short\n"
        "oddity\tmore\n"
        "python\tonly two\n"
        "\n";
    gltop_detail_stacks stacks = {.id = 2, .status = GL_MONITOR_ANSWER_TRUNCATED,
                                  .text = strdup(answer)};
    gltop_detail d;
    CHECK_OK(gltop_detail_build(model, 2, &stacks, &d));
    CHECK(has_line(&d, GLTOP_LINE_TITLE, "Python stack, innermost first"));
    CHECK(has_line(&d, GLTOP_LINE_TEXT, "recv"));
    CHECK(has_line(&d, GLTOP_LINE_TEXT, " socket.py:663")); /* base name */
    CHECK(has_line(&d, GLTOP_LINE_TEXT, "server.py:12"));
    CHECK(has_line(&d, GLTOP_LINE_TITLE, "Native stack, innermost first"));
    CHECK(has_line(&d, GLTOP_LINE_TEXT,
                   "0x7f0000001234  gl__stack_switch+0x25  _greenlet.so"));
    CHECK(has_line(&d, GLTOP_LINE_NOTE, "cut short"));
    CHECK(has_line(&d, GLTOP_LINE_NOTE, "a line gltop does not know: oddity"));
    CHECK(has_line(&d, GLTOP_LINE_NOTE, "the answer was cut"));
    CHECK(!has_line(&d, GLTOP_LINE_TEXT, "only two")); /* too few fields */
    gltop_detail_free(&d);

    /* An answer about another greenlet is not shown for this one; a
     * request that failed says why. */
    CHECK_OK(gltop_detail_build(model, 1, &stacks, &d));
    CHECK(has_line(&d, GLTOP_LINE_NOTE, "not asked for yet"));
    gltop_detail_free(&d);
    gltop_detail_stacks_clear(&stacks);
    stacks = (gltop_detail_stacks){.id = 2, .error = GL_ETIMEDOUT};
    CHECK_OK(gltop_detail_build(model, 2, &stacks, &d));
    CHECK(has_line(&d, GLTOP_LINE_NOTE, "no answer in time"));
    gltop_detail_free(&d);
    stacks = (gltop_detail_stacks){
        .id = 2, .status = GL_MONITOR_ANSWER_NO_SUCH_GREENLET,
        .text = strdup("")};
    CHECK_OK(gltop_detail_build(model, 2, &stacks, &d));
    CHECK(has_line(&d, GLTOP_LINE_NOTE, "no longer has this greenlet"));
    gltop_detail_free(&d);
    gltop_detail_stacks_clear(&stacks);
    gltop_model_destroy(model);
}
/* The batch output of `model`, text or JSON; free() it. */
static char *batch_output(const gltop_model *model, int json)
{
    char *text;
    size_t size;
    FILE *out = open_memstream(&text, &size);
    CHECK(out != NULL);
    if (json)
        gltop_batch_json(model, 7, "cmd \xc2\x9b[2J", out);
    else
        gltop_batch_text(model, 7, "cmd \xc2\x9b[2J", out);
    fclose(out);
    return text;
}

TEST(gltop_batch_output_is_clean_utf8_whatever_the_segment_holds)
{
    /* U+009B (a C1 control: CSI to a terminal), a lone 0xff, a cut
     * sequence, an overlong '/', a surrogate, and good UTF-8 (é, 中). */
    static const struct spec odd[] = {
        {1, 0, GL_STATE_RUNNING, 1, 0,
         "a\xc2\x9b" "b\xff" "c\xe4\xb8" "d\xc0\xaf" "e\xed\xa0\x80" "f"},
        {2, 1, GL_STATE_SUSPENDED, 1, 0, "caf\xc3\xa9 \xe4\xb8\xad"},
    };
    gltop_model *model;
    CHECK_OK(gltop_model_create(&model));
    CHECK_OK(gltop_model_update(model, snapshot_of(odd, 2), 1, NULL));
    char *text = batch_output(model, 0);
    CHECK(strstr(text, "(cmd ?[2J)") != NULL);
    /* One '?' per byte that starts no valid character. */
    CHECK(strstr(text, "  a?b?c??d??e???f (") != NULL);
    CHECK(strstr(text, "  caf\xc3\xa9 \xe4\xb8\xad (") != NULL);
    free(text);
    char *json = batch_output(model, 1);
    CHECK(strstr(json, "\"command\":\"cmd \\u009b[2J\"") != NULL);
    CHECK(strstr(json, "\"function\":\"a\\u009bb\\ufffdc\\ufffd\\ufffdd"
                       "\\ufffd\\ufffde\\ufffd\\ufffd\\ufffdf\"") != NULL);
    CHECK(strstr(json, "caf\xc3\xa9 \xe4\xb8\xad") != NULL);
    free(json);
    gltop_model_destroy(model);
}
#endif /* GL_TEST_HAVE_INSPECT */
