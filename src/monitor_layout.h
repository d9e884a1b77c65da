/*
 * monitor_layout.h -- the layout of the monitor segment, version 1: the
 * contract between the process that publishes its greenlets (src/monitor.c)
 * and the tools that read them from outside (inspect/monitor_reader.c).
 * docs/monitor.md describes the same layout and protocol in prose.
 *
 * The segment is a memfd named "greenlet-monitor" with mode 0600. Other
 * processes find it through /proc/PID/fd and read it with pread(), never
 * through a mapping (the file may shrink under a mapping, and a mapping
 * faults where a read only comes up short). Integers are in the byte order
 * of the machine, which the reader shares; every struct has a fixed size
 * with explicit padding, checked below.
 *
 *   offset 0             header             struct gl_monitor_header
 *   answer_offset        answer area        text, answer_capacity bytes
 *   threads_offset       thread records     thread_count x thread_record_size
 *   greenlets_offset     greenlet records   greenlet_count x greenlet_record_size
 *   strings_offset       strings            strings_size bytes, not terminated
 *   segment_size         end of what this publication wrote
 *
 * Who writes what:
 * - The process writes the publication (records, strings, `runtime`, and
 *   the header's fields from publish_sequence to the answer area) under
 *   publish_sequence, odd while it writes. A reader copies the header and
 *   everything up to segment_size, then reads publish_sequence again: the
 *   copy is whole if both reads saw the same even value.
 * - Answers to detail requests (full stacks of one greenlet) go to the
 *   answer area under answer_sequence, the same way.
 * - Readers write the reader area only: a heartbeat, the wake word, and a
 *   request. But any process of the same user may write anything anywhere
 *   in the segment, so the process reads back nothing but the reader area
 *   (it keeps its own copy of every offset and count it wrote), treats
 *   the reader area as untrusted, and seals the file against shrinking
 *   (F_SEAL_SHRINK) so that its own mapping cannot fault. Readers treat
 *   all of it as untrusted.
 *
 * Attaching: a reader stores CLOCK_MONOTONIC now in reader_heartbeat_ns,
 * stores any new value in `wake`, and calls FUTEX_WAKE on `wake` (through a
 * mapping of the first page, which FUTEX_WAKE never touches, so it cannot
 * fault). The process publishes at once, then at least every
 * GL_MONITOR_REFRESH_MS while the heartbeat is younger than
 * GL_MONITOR_READER_TIMEOUT_MS; with no reader it publishes nothing. A
 * reader that wants data taken after it attached waits for published_ns
 * to pass its attach time.
 */
#ifndef GL_MONITOR_LAYOUT_H
#define GL_MONITOR_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define GL_MONITOR_MEMFD_NAME "greenlet-monitor"
#define GL_MONITOR_MAGIC "GLMONITR" /* 8 bytes, no terminator */
#define GL_MONITOR_LAYOUT_VERSION 1u

#define GL_MONITOR_REFRESH_MS 500
#define GL_MONITOR_READER_TIMEOUT_MS 3000
#define GL_MONITOR_ANSWER_CAPACITY 65536u

/* A string of the strings area: [offset, offset + length) relative to
 * strings_offset. Not terminated; length 0 means none. */
typedef struct gl_monitor_string {
    uint32_t offset;
    uint32_t length;
} gl_monitor_string;

/* Values of gl_monitor_greenlet.state: those of gl_state. */
enum gl_monitor_state {
    GL_MONITOR_STATE_NEW = 0,
    GL_MONITOR_STATE_RUNNING = 1,
    GL_MONITOR_STATE_SUSPENDED = 2,
    GL_MONITOR_STATE_DEAD = 3
};

/* Bits of gl_monitor_greenlet.flags. */
enum {
    GL_MONITOR_GREENLET_MAIN = 1u,       /* a thread's main greenlet */
    GL_MONITOR_GREENLET_PLACE = 2u,      /* function/file/line are set */
    GL_MONITOR_GREENLET_SPAWN_SITE = 4u, /* spawn_* are set */
    /* Its saved stack is referenced from outside the engine: the last
     * hazard audit (greenlet.inspect.audit(), a tool's audit request, or
     * the periodic audit) found a word pointing into it. gltop shows it as
     * the flag H. */
    GL_MONITOR_GREENLET_HAZARD = 8u
};

typedef struct gl_monitor_thread {
    uint64_t serial;            /* the engine's thread number, from 1 */
    int64_t os_id;              /* gettid() */
    uint32_t exited;            /* 1: the thread has exited */
    uint32_t padding;
    uint64_t switches;
    uint64_t current_id;        /* its running greenlet, 0 if none */
    uint64_t saved_bytes;       /* heap-held stack bytes of its greenlets */
    uint64_t saved_bytes_peak;
    uint64_t greenlets;         /* its records, main included */
    gl_monitor_string name;     /* the runtime's name for it, if any */
} gl_monitor_thread;

typedef struct gl_monitor_greenlet {
    uint64_t id;                /* never reused in the process */
    uint64_t parent_id;         /* 0: none (a main greenlet) */
    uint64_t thread_serial;
    uint32_t state;             /* enum gl_monitor_state */
    uint32_t flags;             /* GL_MONITOR_GREENLET_* */
    uint64_t stack_pointer;     /* where it was suspended; 0 if not */
    uint64_t stack_stop;
    uint64_t saved_bytes;       /* stack bytes held on the heap */
    uint64_t saved_bytes_peak;
    uint64_t switches;
    uint64_t created_ns;        /* CLOCK_MONOTONIC */
    uint64_t last_ran_serial;   /* its thread's switches when it last ran */
    uint32_t line;              /* place: where it runs or is suspended */
    uint32_t spawn_line;
    gl_monitor_string name;     /* a label given by the program, or a type */
    gl_monitor_string function;
    gl_monitor_string file;
    gl_monitor_string spawn_function;
    gl_monitor_string spawn_file;
} gl_monitor_greenlet;

/* Values of answer_status. */
enum gl_monitor_answer_status {
    GL_MONITOR_ANSWER_OK = 0,
    GL_MONITOR_ANSWER_NO_SUCH_GREENLET = 1,
    GL_MONITOR_ANSWER_UNAVAILABLE = 2, /* no runtime, or it is shutting down */
    GL_MONITOR_ANSWER_TRUNCATED = 3    /* OK, but cut at answer_capacity */
};

/* Bits of request_kinds. */
enum {
    GL_MONITOR_REQUEST_PYTHON_STACK = 1u,
    GL_MONITOR_REQUEST_NATIVE_STACK = 2u,
    /* The hazard audit of the whole process (the greenlet id is ignored):
     * a "hazard" line per hit, or a "note" when there is none. */
    GL_MONITOR_REQUEST_AUDIT = 4u,
    /* With AUDIT: also watch the hits' addresses for writes (hardware
     * watchpoints); "write" lines of later audits list the writes caught. */
    GL_MONITOR_REQUEST_WATCH = 8u
};

/*
 * The answer text: one line per frame, fields separated by tabs,
 *   "python\tFUNCTION\tFILE\tLINE\n"           innermost first
 *   "native\tFUNCTION\tOFFSET\tOBJECT\tIP\n"   innermost first
 *   "note\tTEXT\n"                            e.g. why there is no stack
 *   "hazard\tGREENLET\tHOLDER\tPOINTER\tSTART\tEND\tOBJECT\tSYMBOL\t
 *    SYMBOL_OFFSET\tFRAME\tFRAME_OFFSET\tFRAME_OBJECT\tSTATE\n"   a hit of
 *    the audit: the word at HOLDER (in OBJECT, at SYMBOL+SYMBOL_OFFSET
 *    when known; OBJECT is "[stack of thread TID]" for a word on another
 *    thread's stack, "[heap allocation 0xADDRESS, N bytes]" or
 *    "[anonymous memory]" for one in anonymous memory) holds POINTER, in
 *    [START, END), a part of GREENLET's stack, in the locals of its C
 *    function FRAME of FRAME_OBJECT (empty when unknown); STATE is "saved"
 *    (that part is on the heap: another greenlet has the address) or
 *    "live" (in place, but another greenlet has the address saved and
 *    takes it back when it resumes); several lines for one HOLDER, one
 *    per greenlet that has that address
 *   "write\tGREENLET\tADDRESS\tWRITER_TID\tKIND\tSTATE\tFRAMES\n"   a write
 *    caught by a watch (GL_MONITOR_REQUEST_WATCH): thread WRITER_TID wrote
 *    at ADDRESS, in GREENLET's stack, "from another thread" or "by the
 *    holder's code" (KIND) while GREENLET's bytes there were "saved" or
 *    "live" (STATE); FRAMES is its backtrace, innermost first, as
 *    "FUNCTION+0xOFFSET (OBJECT)" joined by " < "
 * OFFSET, IP and the addresses are hexadecimal with 0x. A field never contains a tab or
 * a newline (the process replaces them with spaces).
 */

typedef struct gl_monitor_header {
    /* Set when the segment is made; never changes afterwards (but
     * `runtime`, rewritten with each publication). */
    char magic[8];
    uint32_t layout_version;
    uint32_t header_size;         /* sizeof(gl_monitor_header) */
    int64_t pid;                  /* the publisher, as it sees itself */
    uint32_t thread_record_size;  /* sizeof(gl_monitor_thread) */
    uint32_t greenlet_record_size;/* sizeof(gl_monitor_greenlet) */
    uint64_t answer_offset;
    uint64_t answer_capacity;
    char runtime[48];             /* e.g. "CPython 3.11.2"; NUL-padded */
    uint64_t constant_padding[2];

    /* The publication; under publish_sequence. */
    uint64_t publish_sequence;    /* odd while the process writes */
    uint64_t segment_size;        /* bytes written, from offset 0 */
    uint64_t publications;        /* how many so far */
    uint64_t published_ns;        /* CLOCK_MONOTONIC just before the copy
                                     of the registry began */
    uint64_t threads_offset;
    uint64_t greenlets_offset;
    uint64_t strings_offset;
    uint32_t thread_count;
    uint32_t greenlet_count;
    uint64_t strings_size;
    uint64_t process_saved_bytes; /* sum over threads */
    uint64_t flags;               /* GL_MONITOR_PUBLICATION_* */
    uint64_t publication_padding[4];

    /* The answer to the last request; under answer_sequence. */
    uint64_t answer_sequence;     /* odd while the process writes */
    uint64_t answer_ticket;       /* request_ticket it answers */
    uint64_t answer_greenlet_id;
    uint32_t answer_status;       /* enum gl_monitor_answer_status */
    uint32_t answer_size;         /* bytes of text in the answer area */
    uint64_t answer_padding[4];

    /* The reader area: written by readers, untrusted by the process. */
    uint64_t reader_heartbeat_ns; /* CLOCK_MONOTONIC of the last reader */
    uint32_t wake;                /* futex word: change it, then wake */
    uint32_t request_kinds;       /* GL_MONITOR_REQUEST_* */
    uint64_t request_ticket;      /* a new value asks for an answer */
    uint64_t request_greenlet_id;
    uint64_t reader_padding[4];
} gl_monitor_header;

/* Bits of gl_monitor_header.flags. */
enum {
    GL_MONITOR_PUBLICATION_PLACES = 1u /* a runtime filled in places */
};

/* The layout is the same for every compiler: checked where it matters. */
_Static_assert(sizeof(gl_monitor_string) == 8, "string ref");
_Static_assert(sizeof(gl_monitor_thread) == 72, "thread record");
_Static_assert(sizeof(gl_monitor_greenlet) == 136, "greenlet record");
_Static_assert(offsetof(gl_monitor_header, publish_sequence) == 112,
               "header: publication");
_Static_assert(offsetof(gl_monitor_header, answer_sequence) == 232,
               "header: answer");
_Static_assert(offsetof(gl_monitor_header, reader_heartbeat_ns) == 296,
               "header: reader area");
_Static_assert(sizeof(gl_monitor_header) == 360, "header");

#endif /* GL_MONITOR_LAYOUT_H */
