/*
 * elf_symbols.c -- names for the data that dladdr cannot name: the symbol
 * of an ELF file's .symtab (failing that, its .dynsym) that covers an
 * address, for the hazard audit's holders.
 *
 * dladdr sees only the dynamic symbol table, what an object exports; the
 * globals a C extension keeps to itself (`static char *kept;`, the usual
 * holder of a stale stack pointer) are only in .symtab, which the loader
 * does not map. So the file is mapped again, read-only, and its section
 * headers walked to the symbol tables. The file is untrusted (a truncated
 * or hostile object may be loaded): every offset, size, index and string
 * from it is checked against the file before use, and headers and symbols
 * are copied out with memcpy, since only a well-behaved linker aligns them.
 *
 * Cost: a stat per call, O(symbols) per lookup. The audit asks many times
 * about the same object, so the last file stays mapped (keyed by path,
 * device, inode, size and modification time) until another file is asked
 * for or gl__elf_symbols_forget. Caveat: a file cut short in place while
 * it is read raises SIGBUS (installers replace files by rename instead).
 */
#define _GNU_SOURCE
#include "inspect_internal.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOST_CLASS (__ELF_NATIVE_CLASS == 64 ? ELFCLASS64 : ELFCLASS32)
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HOST_DATA ELFDATA2LSB
#else
#define HOST_DATA ELFDATA2MSB
#endif

/* The last file asked about; image NULL when there is none. */
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char path[PATH_MAX];
    struct stat key;
    const unsigned char *image;
    size_t size;
} cache;

/* A search of the cached image for one address. */
typedef struct lookup {
    ElfW(Ehdr) header;
    uintptr_t bias, address;
    int kind;         /* GL__ELF_DATA or GL__ELF_FUNCTIONS */
    const char *name; /* the symbol found so far, in the image; or NULL */
    uintptr_t start;
} lookup;

/* Whether [offset, offset + length) lies within the cached image. */
static int within(uint64_t offset, uint64_t length)
{
    return offset <= cache.size && length <= cache.size - offset;
}

/* Whether two stats are of one file, unchanged between them. */
static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
           a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void release_cache(void)
{
    if (cache.image)
        munmap((void *)cache.image, cache.size);
    cache.image = NULL;
}

/* Makes the cache hold `path`, mapped; 0, or -1 if it cannot be read (the
 * cache is then empty). Called with cache_lock held. O_NONBLOCK: opening
 * a FIFO must not wait for a writer. */
static int hold_file(const char *path)
{
    struct stat now;
    if (stat(path, &now) == 0 && cache.image &&
        strcmp(path, cache.path) == 0 && same_file(&now, &cache.key))
        return 0;
    release_cache();
    if (snprintf(cache.path, sizeof cache.path, "%s", path) >=
        (int)sizeof cache.path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    void *image = MAP_FAILED;
    if (fstat(fd, &cache.key) == 0 && S_ISREG(cache.key.st_mode) &&
        cache.key.st_size >= (off_t)sizeof(ElfW(Ehdr)))
        image = mmap(NULL, (size_t)cache.key.st_size, PROT_READ, MAP_PRIVATE,
                     fd, 0);
    close(fd);
    if (image == MAP_FAILED)
        return -1;
    cache.image = image;
    cache.size = (size_t)cache.key.st_size;
    return 0;
}

/* The file header, if it is one of this host's kind with a section header
 * table inside the file. A count of 0 (more than 65279 sections, counted
 * in section 0 instead) finds nothing: no shared object has that many. */
static int read_header(lookup *l)
{
    memcpy(&l->header, cache.image, sizeof l->header);
    const unsigned char *ident = l->header.e_ident;
    return memcmp(ident, ELFMAG, SELFMAG) == 0 &&
           ident[EI_CLASS] == HOST_CLASS && ident[EI_DATA] == HOST_DATA &&
           l->header.e_shentsize == sizeof(ElfW(Shdr)) &&
           within(l->header.e_shoff,
                  (uint64_t)l->header.e_shnum * sizeof(ElfW(Shdr)));
}

/* Section `index`'s header; 0 if there is no such section. */
static int read_section(const lookup *l, size_t index, ElfW(Shdr) *section)
{
    if (index >= l->header.e_shnum)
        return 0;
    memcpy(section, cache.image + l->header.e_shoff + index * sizeof *section,
           sizeof *section);
    return 1;
}

/* Whether `symbol` is data covering l->address: a sized one over its
 * extent, a zero-size one at its start only. Undefined symbols and those
 * of special sections are not: an absolute value is not moved by the bias,
 * common ones are in relocatable files only. */
static int covers(const lookup *l, const ElfW(Sym) *symbol)
{
    int type = ELF64_ST_TYPE(symbol->st_info); /* = ELF32_ST_TYPE */
    uintptr_t start = (uintptr_t)symbol->st_value + l->bias;
    int wanted = l->kind == GL__ELF_FUNCTIONS
                     ? type == STT_FUNC
                     : type == STT_OBJECT ||
                           (type == STT_NOTYPE && symbol->st_size);
    if (!wanted ||
        symbol->st_shndx == SHN_UNDEF || symbol->st_shndx >= SHN_LORESERVE ||
        l->address < start)
        return 0;
    return symbol->st_size ? l->address - start < symbol->st_size
                           : l->address == start;
}

/* The string at `offset` in string table `strings` if it is not empty and
 * ends within the table; else NULL. */
static const char *string_at(const ElfW(Shdr) *strings, uint64_t offset)
{
    if (offset >= strings->sh_size)
        return NULL;
    const char *string =
        (const char *)cache.image + strings->sh_offset + offset;
    if (!*string || !memchr(string, '\0', strings->sh_size - offset))
        return NULL;
    return string;
}

/* Looks through symbol table `table` for a named symbol covering
 * l->address. A sized one ends the search (returns 1); a zero-size one
 * (__TMC_END__ and the like, which may share its address with a real
 * variable) is kept in case no sized one covers the address. */
static int search_table(lookup *l, const ElfW(Shdr) *table)
{
    ElfW(Shdr) strings;
    if (table->sh_entsize != sizeof(ElfW(Sym)) ||
        !within(table->sh_offset, table->sh_size) ||
        !read_section(l, table->sh_link, &strings) ||
        strings.sh_type != SHT_STRTAB ||
        !within(strings.sh_offset, strings.sh_size))
        return 0;
    for (size_t i = 0; i < table->sh_size / sizeof(ElfW(Sym)); i++) {
        ElfW(Sym) symbol;
        memcpy(&symbol, cache.image + table->sh_offset + i * sizeof symbol,
               sizeof symbol);
        const char *name;
        if (!covers(l, &symbol) ||
            !(name = string_at(&strings, symbol.st_name)))
            continue;
        if (symbol.st_size || !l->name) {
            l->name = name;
            l->start = (uintptr_t)symbol.st_value + l->bias;
        }
        if (symbol.st_size)
            return 1;
    }
    return 0;
}

/* Looks through every table of section type `type`; 1 if one names the
 * address. */
static int search_tables(lookup *l, uint32_t type)
{
    ElfW(Shdr) section;
    for (size_t i = 0; read_section(l, i, &section); i++)
        if (section.sh_type == type && search_table(l, &section))
            return 1;
    return l->name != NULL;
}

int gl__elf_data_symbol(const char *path, uintptr_t bias, uintptr_t address,
                        char *name, size_t size, uintptr_t *offset)
{
    return gl__elf_symbol(path, bias, address, GL__ELF_DATA, name, size,
                          offset);
}

int gl__elf_symbol(const char *path, uintptr_t bias, uintptr_t address,
                   int kind, char *name, size_t size, uintptr_t *offset)
{
    int found = 0;
    pthread_mutex_lock(&cache_lock);
    lookup l = {.bias = bias, .address = address, .kind = kind};
    if (path && hold_file(path) == 0 && read_header(&l) &&
        (search_tables(&l, SHT_SYMTAB) || search_tables(&l, SHT_DYNSYM))) {
        snprintf(name, size, "%s", l.name);
        *offset = address - l.start;
        found = 1;
    }
    pthread_mutex_unlock(&cache_lock);
    return found;
}

void gl__elf_symbols_forget(void)
{
    pthread_mutex_lock(&cache_lock);
    release_cache();
    pthread_mutex_unlock(&cache_lock);
}
