/*
 * test_elf_symbols.c -- names from ELF files (inspect/elf_symbols.c): a
 * static global of this program, which dladdr cannot name, is named with
 * the offset into it; exported data of a stripped library is named from
 * .dynsym; stacks, functions and files that are no ELF objects give
 * nothing; copies of this program cut short or with corrupt headers give
 * nothing and do not crash; the last file stays mapped for the next call,
 * and is let go for another file, for a replaced one and by
 * gl__elf_symbols_forget. Native builds only.
 */
#ifdef GL_TEST_HAVE_INSPECT
#define _GNU_SOURCE
#include "inspect_internal.h"
#include "runner.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* The holders to name: static, so in .symtab only. */
static char *elf_test_kept_pointer;
static char elf_test_kept_buffer[40] = "kept across a switch";

/* This program, or a library: its file, load bias and bytes. */
typedef struct object {
    char path[PATH_MAX];
    uintptr_t bias;
    unsigned char *image;
    size_t size;
} object;

typedef struct object_search {
    uintptr_t address;
    object *found;
} object_search;

static int find_object(struct dl_phdr_info *info, size_t size, void *context)
{
    (void)size;
    object_search *search = context;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *segment = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + segment->p_vaddr;
        if (segment->p_type != PT_LOAD || search->address < start ||
            search->address - start >= segment->p_memsz)
            continue;
        search->found->bias = info->dlpi_addr;
        if (info->dlpi_name && *info->dlpi_name) {
            snprintf(search->found->path, PATH_MAX, "%s", info->dlpi_name);
        } else { /* the program */
            ssize_t n = readlink("/proc/self/exe", search->found->path,
                                 PATH_MAX - 1);
            CHECK(n > 0);
            search->found->path[n] = '\0';
        }
        return 1;
    }
    return 0;
}

/* The loaded object holding `address`, its bytes read if `with_bytes`. */
static void load_object(const volatile void *address, int with_bytes,
                        object *o)
{
    object_search search = {(uintptr_t)address, o};
    *o = (object){.image = NULL};
    CHECK(dl_iterate_phdr(find_object, &search) == 1);
    if (!with_bytes)
        return;
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    struct stat status;
    CHECK(fd >= 0 && fstat(fd, &status) == 0);
    o->size = (size_t)status.st_size;
    CHECK((o->image = malloc(o->size)) != NULL);
    CHECK(read(fd, o->image, o->size) == (ssize_t)o->size);
    close(fd);
}

/* Writes `size` bytes to a new temporary file, its path into path[32]. */
static void write_temporary(const void *bytes, size_t size, char *path)
{
    snprintf(path, 32, "/tmp/gl-elf-test-XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, bytes, size) == (ssize_t)size);
    close(fd);
}

/* Checks what gl__elf_data_symbol says of `address`: "name+offset", or ""
 * for nothing. */
#define EXPECT_NAME(path, bias, address, expected)                            \
    expect_name(path, bias, (uintptr_t)(address), expected, __LINE__)
static void expect_name(const char *path, uintptr_t bias, uintptr_t address,
                        const char *expected, int line)
{
    char name[64], got[96] = "";
    uintptr_t offset;
    if (gl__elf_data_symbol(path, bias, address, name, sizeof name, &offset))
        snprintf(got, sizeof got, "%s+%" PRIuPTR, name, offset);
    if (strcmp(got, expected) != 0)
        test_fail(__FILE__, line, "%s: got \"%s\", expected \"%s\"", path,
                  got, expected);
}

TEST(elf_symbols_name_a_static_global_of_the_program)
{
    object program;
    load_object(elf_test_kept_buffer, 0, &program);
    EXPECT_NAME(program.path, program.bias, &elf_test_kept_pointer,
                "elf_test_kept_pointer+0");
    EXPECT_NAME(program.path, program.bias, &elf_test_kept_buffer[17],
                "elf_test_kept_buffer+17");
    EXPECT_NAME(program.path, program.bias, &elf_test_kept_buffer[39],
                "elf_test_kept_buffer+39");
    char name[5]; /* cut short, and terminated */
    uintptr_t offset;
    CHECK_EQ(gl__elf_data_symbol(program.path, program.bias,
                                 (uintptr_t)&elf_test_kept_buffer[3], name,
                                 sizeof name, &offset), 1);
    CHECK(strcmp(name, "elf_") == 0);
    CHECK_EQ(offset, 3);
    gl__elf_symbols_forget();
}

TEST(elf_symbols_name_exported_data_of_a_stripped_library)
{
    object library; /* the C library (Debian's has no .symtab) */
    load_object(&stderr, 0, &library);
    CHECK(strstr(library.path, "libc") != NULL);
    EXPECT_NAME(library.path, library.bias, &stderr, "stderr+0");
    gl__elf_symbols_forget();
}

TEST(elf_symbols_find_nothing_outside_data_symbols_and_elf_files)
{
    object program;
    load_object(elf_test_kept_buffer, 0, &program);
    volatile int local = 0;
    EXPECT_NAME(program.path, program.bias, &local, "");
    EXPECT_NAME(program.path, program.bias, &load_object, ""); /* code */
    /* the ELF header, where undefined symbols (valued 0) would be */
    EXPECT_NAME(program.path, program.bias, program.bias, "");
    EXPECT_NAME("/nonexistent/gl-elf-test", 0, &elf_test_kept_buffer, "");
    EXPECT_NAME("/dev/null", 0, &elf_test_kept_buffer, "");
    EXPECT_NAME("/", 0, &elf_test_kept_buffer, "");
    EXPECT_NAME("/proc/self/status", 0, &elf_test_kept_buffer, "");
    gl__elf_symbols_forget();
}

TEST(elf_symbols_refuse_truncated_copies_of_the_program)
{
    object program;
    load_object(elf_test_kept_buffer, 1, &program);
    size_t sizes[] = {0, 16, 63, 64, 1000, program.size / 2, program.size - 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char path[32];
        write_temporary(program.image, sizes[i], path);
        EXPECT_NAME(path, program.bias, &elf_test_kept_buffer[17], "");
        unlink(path);
    }
    free(program.image);
    gl__elf_symbols_forget();
}

/* What the corruptions change in a copy of this program. */
typedef struct layout {
    ElfW(Ehdr) *header;
    ElfW(Shdr) *symbols, *strings;
    ElfW(Sym) *kept; /* elf_test_kept_buffer's symbol */
} layout;

static void find_layout(unsigned char *image, layout *at)
{
    *at = (layout){.header = (ElfW(Ehdr) *)image};
    ElfW(Shdr) *sections = (ElfW(Shdr) *)(image + at->header->e_shoff);
    for (size_t i = 0; i < at->header->e_shnum; i++)
        if (sections[i].sh_type == SHT_SYMTAB)
            at->symbols = &sections[i];
    CHECK(at->symbols != NULL);
    at->strings = &sections[at->symbols->sh_link];
    ElfW(Sym) *symbols = (ElfW(Sym) *)(image + at->symbols->sh_offset);
    const char *names = (const char *)image + at->strings->sh_offset;
    for (size_t i = 0; i < at->symbols->sh_size / sizeof *symbols; i++)
        if (strcmp(names + symbols[i].st_name, "elf_test_kept_buffer") == 0)
            at->kept = &symbols[i];
    CHECK(at->kept != NULL);
}

/* Each changes one field of a copy of this program, so that the copy must
 * not name elf_test_kept_buffer (INTACT must): its symbol is in .symtab
 * only, so a .symtab refused leaves nothing to find. */
enum corruption {
    INTACT,
    MAGIC,
    CLASS,
    ENDIANNESS,
    SECTION_HEADER_SIZE,
    SECTION_HEADERS_PAST_THE_END,
    SECTION_HEADERS_WRAP_AROUND,
    SECTION_COUNT,
    SYMBOLS_LINK_OUT_OF_RANGE,
    SYMBOLS_PAST_THE_END,
    SYMBOLS_WRAP_AROUND,
    SYMBOLS_LONGER_THAN_THE_FILE,
    SYMBOL_ENTRY_SIZE,
    STRINGS_PAST_THE_END,
    STRINGS_LONGER_THAN_THE_FILE,
    STRINGS_OF_ANOTHER_TYPE,
    NAME_UNTERMINATED,
    NAME_PAST_THE_STRINGS,
    NAME_EMPTY,
    SIZE_ZERO,
    ABSOLUTE,
    CORRUPTION_COUNT
};

static void corrupt(unsigned char *image, size_t size, enum corruption which)
{
    layout at;
    find_layout(image, &at);
    ElfW(Ehdr) *header = at.header;
    switch (which) {
    case INTACT: break;
    case MAGIC: header->e_ident[EI_MAG1] = 'X'; break;
    case CLASS: /* the other one */
        header->e_ident[EI_CLASS] ^= ELFCLASS32 ^ ELFCLASS64;
        break;
    case ENDIANNESS: /* the other one */
        header->e_ident[EI_DATA] ^= ELFDATA2LSB ^ ELFDATA2MSB;
        break;
    case SECTION_HEADER_SIZE: header->e_shentsize += 8; break;
    case SECTION_HEADERS_PAST_THE_END: header->e_shoff = size; break;
    case SECTION_HEADERS_WRAP_AROUND: header->e_shoff = -(ElfW(Off))64; break;
    case SECTION_COUNT: header->e_shnum = 0xffff; break;
    case SYMBOLS_LINK_OUT_OF_RANGE:
        at.symbols->sh_link = header->e_shnum;
        break;
    case SYMBOLS_PAST_THE_END: at.symbols->sh_offset = size - 8; break;
    case SYMBOLS_WRAP_AROUND: at.symbols->sh_offset = -(ElfW(Off))24; break;
    case SYMBOLS_LONGER_THAN_THE_FILE: at.symbols->sh_size = size; break;
    case SYMBOL_ENTRY_SIZE: at.symbols->sh_entsize = 1; break;
    case STRINGS_PAST_THE_END: at.strings->sh_offset = size; break;
    case STRINGS_LONGER_THAN_THE_FILE: at.strings->sh_size = size; break;
    case STRINGS_OF_ANOTHER_TYPE: at.strings->sh_type = SHT_PROGBITS; break;
    case NAME_UNTERMINATED: at.strings->sh_size = at.kept->st_name + 3; break;
    case NAME_PAST_THE_STRINGS:
        at.kept->st_name = (ElfW(Word))at.strings->sh_size + 1;
        break;
    case NAME_EMPTY: at.kept->st_name = 0; break;
    case SIZE_ZERO: at.kept->st_size = 0; break; /* names its start only */
    case ABSOLUTE: at.kept->st_shndx = SHN_ABS; break; /* not biased */
    case CORRUPTION_COUNT: break;
    }
}

TEST(elf_symbols_refuse_copies_with_corrupt_headers)
{
    object program;
    load_object(elf_test_kept_buffer, 1, &program);
    unsigned char *copy = malloc(program.size);
    CHECK(copy != NULL);
    for (int which = INTACT; which < CORRUPTION_COUNT; which++) {
        memcpy(copy, program.image, program.size);
        corrupt(copy, program.size, which);
        char path[32];
        write_temporary(copy, program.size, path);
        EXPECT_NAME(path, program.bias, &elf_test_kept_buffer[17],
                    which == INTACT ? "elf_test_kept_buffer+17" : "");
        unlink(path);
    }
    free(copy);
    free(program.image);
    gl__elf_symbols_forget();
}

/* How many of this process's mappings are of the file at `path`. */
static int mappings_of(const char *path)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    CHECK(maps != NULL);
    char line[512];
    int count = 0;
    while (fgets(line, sizeof line, maps)) {
        const char *at = strstr(line, path);
        count += at && strcmp(at + strlen(path), "\n") == 0;
    }
    fclose(maps);
    return count;
}

TEST(elf_symbols_keep_the_last_file_mapped_until_another_is_asked_for)
{
    object program;
    load_object(elf_test_kept_buffer, 1, &program);
    char first[32], second[32], cut[32];
    write_temporary(program.image, program.size, first);
    write_temporary(program.image, program.size, second);
    const char *kept = "elf_test_kept_buffer+5";
    EXPECT_NAME(first, program.bias, &elf_test_kept_buffer[5], kept);
    CHECK_EQ(mappings_of(first), 1);

    /* With no file descriptor left, the file kept still answers, and
     * another cannot be read. */
    struct rlimit saved, none;
    CHECK(getrlimit(RLIMIT_NOFILE, &saved) == 0);
    int lowest_free = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK(lowest_free >= 0);
    close(lowest_free);
    none = saved;
    none.rlim_cur = (rlim_t)lowest_free;
    CHECK(setrlimit(RLIMIT_NOFILE, &none) == 0);
    EXPECT_NAME(first, program.bias, &elf_test_kept_buffer[5], kept);
    EXPECT_NAME(second, program.bias, &elf_test_kept_buffer[5], "");
    CHECK(setrlimit(RLIMIT_NOFILE, &saved) == 0);

    CHECK_EQ(mappings_of(first), 0); /* let go for another file */
    EXPECT_NAME(second, program.bias, &elf_test_kept_buffer[5], kept);
    CHECK_EQ(mappings_of(second), 1);
    write_temporary(program.image, 64, cut); /* replaced: read again */
    CHECK(rename(cut, second) == 0);
    EXPECT_NAME(second, program.bias, &elf_test_kept_buffer[5], "");
    gl__elf_symbols_forget();
    CHECK_EQ(mappings_of(second), 0);
    unlink(first);
    unlink(second);
    free(program.image);
}
#endif /* GL_TEST_HAVE_INSPECT */
