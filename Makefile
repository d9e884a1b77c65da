# The greenlet engine's build. Products go under build/ (ignored by git).
#
#   make              the engine (static and shared), the Python package,
#                     gltop, tests, benchmarks, demo programs
#   make test         every test: C tests natively, under ASan+UBSan, under
#                     valgrind, and cross-built for aarch64 under qemu; the
#                     Python tests (gltop's among them) and upstream
#                     greenlet's own suite, natively and with ASan, on
#                     CPython 3.11 (PYTHON) and on 3.10, 3.12 and 3.13
#   make bench        the switch against ucontext and Boost.Context, the
#                     package against Debian's greenlet, the monitor's cost,
#                     gltop's refresh with 100,000 greenlets
#   make demo         the main job: workloads of many greenlets, watched by
#                     python -m greenlet.inspect and by gltop
#
# Missing Debian packages are installed first (.ci/install-packages), so
# that on a fresh machine these targets are all a user types.
# Variables: CC, PYTHON (default /usr/bin/python3: any CPython 3.10 to 3.13
# with its headers; make PYTHON=... builds the extension for it), BUILD
# (default build).

CC ?= gcc
PYTHON ?= /usr/bin/python3
BUILD ?= build
CROSS_CC ?= aarch64-linux-gnu-gcc
QEMU ?= qemu-aarch64
SHARED ?= ../shared

WARNINGS := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wpointer-arith -Wformat=2 -Wno-missing-field-initializers
BASE_CFLAGS := -std=gnu11 -g -fPIC -fvisibility=hidden $(WARNINGS) -Isrc
OPT_CFLAGS := -O2
ASAN_CFLAGS := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined

ENGINE_SOURCES := $(sort $(wildcard src/*.c))
ENGINE_HEADERS := $(wildcard src/*.h)
INSPECT_SOURCES := $(sort $(wildcard inspect/*.c))
INSPECT_HEADERS := $(wildcard inspect/*.h)
ARCH_SOURCES := $(wildcard arch/*.S)
TEST_SOURCES := $(sort $(wildcard tests/test_*.c)) tests/runner.c \
                tests/stack_pattern.c tests/gltop_snapshots.c
TEST_HEADERS := $(wildcard tests/*.h)

.PHONY: all test test-native test-asan test-valgrind test-aarch64 \
        test-arch-selector test-python test-python-native test-python-asan \
        test-other-pythons python-extension \
        python-extension-debug \
        python-extension-asan python-extension-debug-module bench demo \
        clean packages-build packages-test
all: $(BUILD)/libglengine.a $(BUILD)/libglengine.so $(BUILD)/engine-tests \
     $(BUILD)/gltop \
     $(BUILD)/switch-bench $(BUILD)/scheduler-demo python-extension

# ---------------------------------------------------------------- packages
BUILD_PACKAGES := gcc make libc6-dev libunwind-dev libboost-context-dev g++ \
                  python3-dev python3-setuptools libncurses-dev
TEST_PACKAGES := valgrind gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
                 qemu-user gdb python3-pytest python3-gevent python3-dbg \
                 python3-greenlet tmux python3-objgraph python3-psutil \
                 python3-exceptiongroup python3-tomli
BENCH_PACKAGES := python3-greenlet
# $(BUILD)/.packages-build, -test, -bench: the packages of that list.
$(BUILD)/.packages-%: .ci/install-packages Makefile
	@mkdir -p $(BUILD)
	@.ci/install-packages $($(shell echo $* | tr a-z A-Z)_PACKAGES)
	@touch $@
packages-build: $(BUILD)/.packages-build
packages-test: $(BUILD)/.packages-test

# ------------------------------------------------------------ engine build
# $(call engine_objects,DIR): the engine's objects for one build variant.
engine_objects = $(patsubst src/%.c,$(1)/obj/%.o,$(ENGINE_SOURCES)) \
                 $(1)/obj/arch_switch.o

# Variant rules: native, ASan+UBSan, and aarch64 cross.
define VARIANT
$(1)/obj/%.o: src/%.c $(ENGINE_HEADERS) | $(BUILD)/.packages-build
	@mkdir -p $$(@D)
	$(2) $(3) -c $$< -o $$@
$(1)/obj/arch_switch.o: $(ARCH_SOURCES) | $(BUILD)/.packages-build
	@mkdir -p $$(@D)
	$(2) $(3) -c arch/switch.S -o $$@
$(1)/libglengine.a: $$(call engine_objects,$(1))
	rm -f $$@
	$(4) rcs $$@ $$^
$(1)/obj/inspect/%.o: inspect/%.c $(INSPECT_HEADERS) $(ENGINE_HEADERS) | $(BUILD)/.packages-build
	@mkdir -p $$(@D)
	$(2) $(3) -Iinspect -c $$< -o $$@
$(1)/libglinspect.a: $(patsubst inspect/%.c,$(1)/obj/inspect/%.o,$(INSPECT_SOURCES))
	rm -f $$@
	$(4) rcs $$@ $$^
endef
$(eval $(call VARIANT,$(BUILD),$(CC),$(BASE_CFLAGS) $(OPT_CFLAGS),ar))
$(eval $(call VARIANT,$(BUILD)/asan,$(CC),$(BASE_CFLAGS) $(ASAN_CFLAGS),ar))
$(eval $(call VARIANT,$(BUILD)/aarch64,$(CROSS_CC),$(BASE_CFLAGS) $(OPT_CFLAGS),aarch64-linux-gnu-ar))

# nodelete: threads that used the engine run its exit handler when they
# end, so the library must never be unloaded.
$(BUILD)/libglengine.so: $(call engine_objects,$(BUILD))
	$(CC) -shared -Wl,-soname,libglengine.so -Wl,-z,noexecstack -Wl,-z,nodelete \
	    -o $@ $^ -lpthread

# ------------------------------------------------------------------- tests
# The native test programs also test inspect/, which needs libunwind (not
# available for the aarch64 cross build). libgcc_s comes first so that the
# compiler's own unwinder, not libunwind's copy of its API, is the one
# tested by test_unwind.c.
TEST_CFLAGS := $(BASE_CFLAGS) -Itests -Iinspect -DGL_TEST_HAVE_LIBUNWIND
# The monitor reader's tests (test_monitor_reader.c) need inspect/ too.
TEST_CFLAGS += -DGL_TEST_HAVE_INSPECT
# gltop's parts without a terminal are tested in the same program (native
# builds only).
GLTOP_MODEL_SOURCES := gltop/model.c gltop/detail.c gltop/format.c \
                       gltop/cursor.c gltop/batch.c
GLTOP_HEADERS := $(wildcard gltop/*.h)
TEST_CFLAGS += -Igltop
UNWIND_LIBS := -Wl,--no-as-needed -lgcc_s -Wl,--as-needed -lunwind-generic -lunwind -ldl
$(BUILD)/engine-tests: $(TEST_SOURCES) $(TEST_HEADERS) $(GLTOP_MODEL_SOURCES) $(GLTOP_HEADERS) $(BUILD)/libglinspect.a $(BUILD)/libglengine.a
	$(CC) $(TEST_CFLAGS) $(OPT_CFLAGS) -o $@ $(TEST_SOURCES) $(GLTOP_MODEL_SOURCES) \
	    $(BUILD)/libglinspect.a $(BUILD)/libglengine.a $(UNWIND_LIBS) -lpthread
$(BUILD)/asan/engine-tests: $(TEST_SOURCES) $(TEST_HEADERS) $(GLTOP_MODEL_SOURCES) $(GLTOP_HEADERS) $(BUILD)/asan/libglinspect.a $(BUILD)/asan/libglengine.a
	$(CC) $(TEST_CFLAGS) $(ASAN_CFLAGS) -o $@ $(TEST_SOURCES) $(GLTOP_MODEL_SOURCES) \
	    $(BUILD)/asan/libglinspect.a $(BUILD)/asan/libglengine.a $(UNWIND_LIBS) -lpthread
$(BUILD)/aarch64/engine-tests: $(TEST_SOURCES) $(TEST_HEADERS) $(BUILD)/aarch64/libglengine.a | $(BUILD)/.packages-test
	$(CROSS_CC) $(BASE_CFLAGS) -Itests $(OPT_CFLAGS) -static -o $@ \
	    $(TEST_SOURCES) $(BUILD)/aarch64/libglengine.a -lpthread

test: test-native test-asan test-valgrind test-aarch64 test-arch-selector \
      test-python test-other-pythons
	@echo "all test runs passed"

test-native: $(BUILD)/engine-tests
	@echo "== C tests, native ($(CC))"
	$(BUILD)/engine-tests

test-asan: $(BUILD)/asan/engine-tests test-python-asan | $(BUILD)/.packages-test
	@echo "== C tests, ASan+UBSan"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 GL_TEST_TIMEOUT_SCALE=3 \
	    $(BUILD)/asan/engine-tests

test-valgrind: $(BUILD)/engine-tests | $(BUILD)/.packages-test
	@echo "== C tests, valgrind memcheck"
	GL_TEST_TIMEOUT_SCALE=10 valgrind -q --error-exitcode=99 \
	    --suppressions=tests/valgrind.supp \
	    --leak-check=full --errors-for-leak-kinds=definite \
	    $(BUILD)/engine-tests

# The monitor's thread is off here: qemu-user (7.2) trips its own
# assertion (plugins/core.c, cpu_exec) when a guest forks while another
# thread sits in a futex wait, which fails the fork test; natively the same
# test passes with the thread on. The monitor tests are native-only.
test-aarch64: $(BUILD)/aarch64/engine-tests
	@echo "== C tests, aarch64 under $(QEMU)"
	GREENLET_MONITOR=0 GL_TEST_TIMEOUT_SCALE=10 $(QEMU) $(BUILD)/aarch64/engine-tests

# An unknown CPU must stop the build with a message that says what to do.
test-arch-selector:
	@echo "== arch/switch.S refuses an unknown CPU"
	@if $(CC) -E -U__x86_64__ -U__aarch64__ arch/switch.S \
	        >/dev/null 2>$(BUILD)/arch-selector.log; then \
	    echo "FAIL: arch/switch.S accepted an unknown CPU"; exit 1; \
	elif grep -q "no stack switch for this CPU" $(BUILD)/arch-selector.log; then \
	    echo "1 passed, 0 failed"; \
	else \
	    echo "FAIL: unexpected error:"; cat $(BUILD)/arch-selector.log; exit 1; \
	fi

# ------------------------------------------------------------------ python
# The extension greenlet._greenlet, compiled here for any interpreter
# (PYTHON=...) from what its sysconfig says, without setuptools: the
# binding (python/ext/) linked with the engine and inspect/ libraries of
# the same build variant. Each interpreter's objects go in a folder named
# by its extension suffix, and so does the module: builds for several
# versions sit side by side in python/greenlet/. setup.py builds the same
# for pip.
comma := ,
PY_EXT_SOURCES := $(sort $(wildcard python/ext/*.c))
PY_EXT_HEADERS := $(wildcard python/ext/*.h)
# $(call py_config,INTERPRETER,EXPRESSION): a fact from its sysconfig.
py_config = $(shell $(1) -c 'import sysconfig; print($(2))' 2>/dev/null)
py_suffix = $(call py_config,$(1),sysconfig.get_config_var("EXT_SUFFIX"))
py_include = $(call py_config,$(1),sysconfig.get_paths()["include"])
PY_SUFFIX := $(call py_suffix,$(PYTHON))
PY_INCLUDE := $(call py_include,$(PYTHON))
PY_TAG := $(patsubst .%.so,%,$(PY_SUFFIX))
DEBUG_PYTHON := /usr/bin/python3-dbg

# $(call PY_EXTENSION,OBJECTS,ENGINE_DIR,CFLAGS,LDFLAGS,INCLUDE,MODULE): the
# rules that compile the binding into OBJECTS/ and link MODULE.
define PY_EXTENSION
$(1)/%.o: python/ext/%.c $(PY_EXT_HEADERS) $(ENGINE_HEADERS) $(INSPECT_HEADERS) | $(BUILD)/.packages-build
	@mkdir -p $$(@D)
	@test -f $(5)/Python.h || { echo "error: no Python.h in '$(5)': install the interpreter's headers (python3-dev)" >&2; exit 1; }
	$(CC) $(3) -Iinspect -Ipython/ext -I$(5) -c $$< -o $$@
$(6): $(patsubst python/ext/%.c,$(1)/%.o,$(PY_EXT_SOURCES)) $(2)/libglinspect.a $(2)/libglengine.a
	@mkdir -p $$(@D)
	$(CC) -shared $(4) -Wl,-z,noexecstack -Wl,-z,nodelete -o $$@.tmp \
	    $$(filter %.o %.a,$$^) -lunwind-generic -lunwind -ldl -lpthread
	mv -f $$@.tmp $$@
endef
PY_MODULE := python/greenlet/_greenlet$(PY_SUFFIX)
$(eval $(call PY_EXTENSION,$(BUILD)/python/$(PY_TAG),$(BUILD),$(BASE_CFLAGS) $(OPT_CFLAGS),,$(PY_INCLUDE),$(PY_MODULE)))

# The package in place (python/), so that PYTHONPATH=python imports it,
# with gltop beside the module as pip installs it.
python-extension: $(PY_MODULE) python/greenlet/gltop
python/greenlet/gltop: $(BUILD)/gltop
	cp $< $@.tmp && mv -f $@.tmp $@

# The same extension for Debian's debug interpreter (the refcount test).
# python3-dbg may be installed only by this target's prerequisite, after
# this Makefile was read: a second make, which reads its suffix then,
# builds the module.
DEBUG_SUFFIX := $(call py_suffix,$(DEBUG_PYTHON))
ifneq ($(DEBUG_SUFFIX),)
DEBUG_MODULE := python/greenlet/_greenlet$(DEBUG_SUFFIX)
$(eval $(call PY_EXTENSION,$(BUILD)/python/$(patsubst .%.so,%,$(DEBUG_SUFFIX)),$(BUILD),$(BASE_CFLAGS) -O1,,$(call py_include,$(DEBUG_PYTHON)),$(DEBUG_MODULE)))
python-extension-debug-module: $(DEBUG_MODULE)
endif
python-extension-debug: | $(BUILD)/.packages-test
	@$(MAKE) --no-print-directory python-extension-debug-module

# The extension built with ASan+UBSan, as a package of its own under
# build/asan/python; CPython itself is not instrumented, so the sanitizer
# runtimes are preloaded, and its leak checker is off (the interpreter
# keeps objects until exit on purpose).
ASAN_RUNTIMES = $(shell $(CC) -print-file-name=libasan.so):$(shell $(CC) -print-file-name=libubsan.so)
ASAN_PACKAGE := $(BUILD)/asan/python/greenlet
$(eval $(call PY_EXTENSION,$(BUILD)/asan/python-objects/$(PY_TAG),$(BUILD)/asan,$(BASE_CFLAGS) $(ASAN_CFLAGS),-fsanitize=address$(comma)undefined,$(PY_INCLUDE),$(ASAN_PACKAGE)/_greenlet$(PY_SUFFIX)))
python-extension-asan: $(ASAN_PACKAGE)/_greenlet$(PY_SUFFIX) $(BUILD)/asan/gltop
	cp python/greenlet/*.py python/greenlet/greenlet.h $(ASAN_PACKAGE)/
	cp $(BUILD)/asan/gltop $(ASAN_PACKAGE)/gltop

# Debian's pure-Python pytest and what it needs, for interpreters other
# than Debian's own (pyenv's have none of it): links in one folder put on
# their PYTHONPATH, not the whole of dist-packages, whose compiled modules
# are Debian's 3.11 (its greenlet among them).
DIST_PACKAGES := /usr/lib/python3/dist-packages
PYTEST_PATH_PACKAGES := pytest _pytest pluggy iniconfig packaging py py.py \
                        attr attrs exceptiongroup tomli objgraph.py
$(BUILD)/pytest-path/.made: Makefile | $(BUILD)/.packages-test
	rm -rf $(@D) && mkdir -p $(@D)
	for package in $(PYTEST_PATH_PACKAGES); do \
	    ln -s $(DIST_PACKAGES)/$$package $(@D)/$$package || exit 1; done
	touch $@
PYTEST_PATH := $(CURDIR)/$(BUILD)/pytest-path
PYTEST := $(PYTHON) -m pytest -q -p no:cacheprovider

# The Python tests of one interpreter (PYTHON): ours, and upstream
# greenlet 2.0.2's own suite (Debian's python3-greenlet ships it),
# unchanged, against this package (tests/upstream_suite.py says how).
test-python-native: python-extension python-extension-debug $(BUILD)/gltop $(BUILD)/pytest-path/.made | $(BUILD)/.packages-test
	@echo "== Python tests ($(PYTHON))"
	PYTHONPATH=python:$(PYTEST_PATH) $(PYTEST) tests/python
	@echo "== upstream greenlet's test suite, unchanged ($(PYTHON))"
	PYTHONPATH=$(PYTEST_PATH) $(PYTHON) tests/upstream_suite.py \
	    --package-root python

# The same with the extension and engine built with ASan+UBSan.
test-python-asan: python-extension-asan python-extension-debug $(BUILD)/pytest-path/.made | $(BUILD)/.packages-test
	@echo "== Python tests, extension and engine with ASan+UBSan ($(PYTHON))"
	LD_PRELOAD=$(ASAN_RUNTIMES) ASAN_OPTIONS=detect_leaks=0 \
	    GREENLET_PACKAGE_ROOT=$(CURDIR)/$(BUILD)/asan/python \
	    GLTOP=$(CURDIR)/$(BUILD)/asan/gltop \
	    PYTHONPATH=$(BUILD)/asan/python:$(PYTEST_PATH) $(PYTEST) tests/python
	@echo "== upstream greenlet's test suite, with ASan+UBSan ($(PYTHON))"
	@# A small quarantine of freed memory: upstream's test_leaks measures
	@# the memory a process holds, which the default 256 MiB quarantine
	@# grows until it is full (freed memory is reused later, not never).
	LD_PRELOAD=$(ASAN_RUNTIMES) ASAN_OPTIONS=detect_leaks=0:quarantine_size_mb=16 \
	    PYTHONPATH=$(PYTEST_PATH) $(PYTHON) tests/upstream_suite.py \
	    --package-root $(BUILD)/asan/python

test-python: test-python-native
	@echo "== Python tests again, every process audited for hazards every 50 ms"
	tests/audit_the_suite.sh $(PYTHON) $(BUILD)/audit-of-the-suite.log

# CPython 3.10, 3.12 and 3.13 beside Debian's 3.11 (pyenv's, found by
# .ci/find-python): each builds the extension and passes the Python tests
# natively and with ASan+UBSan.
OTHER_PYTHONS := 3.10 3.12 3.13
test-other-pythons: | $(BUILD)/.packages-test
	@for version in $(OTHER_PYTHONS); do \
	    python=$$(.ci/find-python $$version) || exit 1; \
	    $(MAKE) --no-print-directory test-python-native test-python-asan \
	        PYTHON=$$python || exit 1; \
	done

# ------------------------------------------------------------------ gltop
GLTOP_SOURCES := $(sort $(wildcard gltop/*.c))
CURSES_LIBS := -lncursesw
$(BUILD)/gltop: $(GLTOP_SOURCES) $(GLTOP_HEADERS) $(INSPECT_HEADERS) $(BUILD)/libglinspect.a $(BUILD)/libglengine.a
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) -Iinspect -Igltop -o $@ $(GLTOP_SOURCES) \
	    $(BUILD)/libglinspect.a $(BUILD)/libglengine.a $(UNWIND_LIBS) \
	    $(CURSES_LIBS) -lpthread
# gltop with ASan+UBSan: test-asan runs the gltop tests on it.
$(BUILD)/asan/gltop: $(GLTOP_SOURCES) $(GLTOP_HEADERS) $(INSPECT_HEADERS) $(BUILD)/asan/libglinspect.a $(BUILD)/asan/libglengine.a
	$(CC) $(BASE_CFLAGS) $(ASAN_CFLAGS) -Iinspect -Igltop -o $@ $(GLTOP_SOURCES) \
	    $(BUILD)/asan/libglinspect.a $(BUILD)/asan/libglengine.a $(UNWIND_LIBS) \
	    $(CURSES_LIBS) -lpthread

# --------------------------------------------------------- bench and demo
$(BUILD)/switch-bench: bench/switch_bench.c bench/boost_context.cpp bench/bench_clock.h bench/copy_floor.h bench/copy_floor_x86_64.S $(BUILD)/libglengine.a
	g++ -O2 -g -c bench/boost_context.cpp -o $(BUILD)/boost_context.o
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) -Ibench -o $@ bench/switch_bench.c \
	    bench/copy_floor_x86_64.S \
	    $(BUILD)/boost_context.o $(BUILD)/libglengine.a -lboost_context \
	    -lstdc++ -lpthread

# gltop at scale (issue 5): gltop's own code but its main, watching
# bench/many_greenlets.py. gl_monitor_read is wrapped so that the bench can
# time the read inside gltop's sample (bench/gltop_bench.c says how).
GLTOP_BENCH_SOURCES := $(filter-out gltop/main.c,$(GLTOP_SOURCES))
$(BUILD)/gltop-bench: bench/gltop_bench.c bench/bench_clock.h $(GLTOP_BENCH_SOURCES) $(GLTOP_HEADERS) $(INSPECT_HEADERS) $(BUILD)/libglinspect.a $(BUILD)/libglengine.a
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) -Iinspect -Igltop -Ibench -o $@ \
	    bench/gltop_bench.c $(GLTOP_BENCH_SOURCES) \
	    -Wl,--wrap=gl_monitor_read \
	    $(BUILD)/libglinspect.a $(BUILD)/libglengine.a $(UNWIND_LIBS) \
	    $(CURSES_LIBS) -lpthread

# Debian's python3-greenlet, copied on its own so that PYTHONPATH selects it
# without the rest of dist-packages.
DEBIAN_GREENLET := /usr/lib/python3/dist-packages/greenlet
$(BUILD)/debian-greenlet/greenlet: | $(BUILD)/.packages-bench
	rm -rf $(BUILD)/debian-greenlet && mkdir -p $(BUILD)/debian-greenlet
	cp -r $(DEBIAN_GREENLET) $(BUILD)/debian-greenlet/

bench: $(BUILD)/switch-bench $(BUILD)/gltop-bench python-extension $(BUILD)/debian-greenlet/greenlet
	$(BUILD)/switch-bench
	@echo "== greenlet: Debian's 2.0.2 (A) against ours (B); B/A < 1: ours is faster or smaller"
	$(SHARED)/bench/compare.sh $(BUILD)/debian-greenlet python
	@echo "== ours on CPython 3.11 (Debian's) and on 3.10, 3.12, 3.13 (pyenv's); ratios to 3.11"
	@for version in $(OTHER_PYTHONS); do \
	    $(MAKE) --no-print-directory python-extension \
	        PYTHON=$$(.ci/find-python $$version) >/dev/null || exit 1; done
	$(PYTHON) bench/python_versions.py $(SHARED)/bench/gbench.py python \
	    $(PYTHON) $(foreach v,$(OTHER_PYTHONS),$$(.ci/find-python $(v)))
	@echo "== the monitor segment's cost to a switching process"
	PYTHONPATH=python $(PYTHON) bench/monitor_bench.py
	@echo "== gltop's refresh at scale (target: under 50 ms with 100,000 greenlets)"
	PYTHONPATH=python PYTHON=$(PYTHON) $(BUILD)/gltop-bench
	@echo "== the hazard audit's time by process size, and a switch with a watch set"
	PYTHONPATH=python $(PYTHON) bench/hazard_bench.py

$(BUILD)/scheduler-demo: tests/workloads/scheduler_demo.c $(BUILD)/libglengine.a
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) -o $@ $< $(BUILD)/libglengine.a -lpthread

# The C workload with its live registry view, then a gevent echo server
# with clients, watched from outside by `python -m greenlet.inspect` (its
# monitor segment) while it runs, and reporting on itself at exit; then
# another one in gltop, in tmux, with `python -m greenlet.inspect` beside
# it (on a terminal you look around and quit with q; without one, the
# script drives gltop and prints its screens); last, the hazard audit
# finds an extension's pointer into a saved stack in another process.
demo: $(BUILD)/scheduler-demo $(BUILD)/gltop python-extension | $(BUILD)/.packages-test
	$(BUILD)/scheduler-demo
	tests/workloads/watch_demo.sh $(PYTHON)
	tests/workloads/gltop_demo.sh $(PYTHON)
	tests/workloads/hazard_demo.sh $(PYTHON)

# -------------------------------------------------------------------- fuzz
# make fuzz-monitor: libFuzzer, with ASan and UBSan, on the monitor segment
# parser (gl_monitor_parse) and on gltop's model, detail pane and batch
# output fed with what it accepts, for FUZZ_RUNS inputs, starting from a copy of
# tests/corpus/monitor (seeds, and inputs that once crashed it; the C suite
# parses each of them). A crash leaves its input in $(BUILD)/fuzz-monitor/;
# minimize it (-minimize_crash=1) and add it to the corpus.
# make monitor-seeds writes the corpus's seed-* images again.
.PHONY: fuzz-monitor monitor-seeds
FUZZ_PACKAGES := clang libclang-rt-14-dev
FUZZ_RUNS ?= 10000000
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined -Isrc -Iinspect -Igltop
FUZZ_SOURCES := inspect/monitor_parse.c src/errors.c tests/fuzz_monitor_reader.c \
                gltop/model.c gltop/detail.c gltop/format.c gltop/batch.c
$(BUILD)/fuzz-monitor-reader: $(FUZZ_SOURCES) $(INSPECT_HEADERS) $(ENGINE_HEADERS) $(GLTOP_HEADERS) | $(BUILD)/.packages-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $(FUZZ_SOURCES)
fuzz-monitor: $(BUILD)/fuzz-monitor-reader
	rm -rf $(BUILD)/fuzz-monitor && mkdir -p $(BUILD)/fuzz-monitor/corpus
	cp tests/corpus/monitor/* $(BUILD)/fuzz-monitor/corpus/
	$(BUILD)/fuzz-monitor-reader -runs=$(FUZZ_RUNS) \
	    -artifact_prefix=$(BUILD)/fuzz-monitor/ $(BUILD)/fuzz-monitor/corpus

$(BUILD)/make-monitor-seeds: tests/make_monitor_seeds.c tests/monitor_images.h src/monitor_layout.h | $(BUILD)/.packages-build
	$(CC) $(BASE_CFLAGS) $(OPT_CFLAGS) -Itests -o $@ tests/make_monitor_seeds.c
monitor-seeds: $(BUILD)/make-monitor-seeds
	$(BUILD)/make-monitor-seeds tests/corpus/monitor

clean:
	rm -rf $(BUILD)
