# revfs — build, test, bench, install.
#
# Sources are found by directory, so adding a file needs no edit here:
#   engine/*.c -> $(B)/libengine.a   (LevelDB; no FUSE)
#   fs/*.c     -> $(B)/libfs.a       (FUSE; no LevelDB)
#   daemon/*.c -> $(B)/revfs         (main; links both)
#   tools/*.c  -> $(B)/<name>        (one program per file, e.g. revfsctl)
#   tests/unit/test_*.c        -> $(B)/tests/test_*   (cmocka)
#   tests/conformance/*.c      -> $(B)/conformance    (one program)
#   tests/bench/bench_*.c      -> $(B)/bench/bench_*
# `make SAN=1` builds everything into build/san with ASan+UBSan.

PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  := $(PREFIX)/bin
SBINDIR := $(PREFIX)/sbin
MANDIR  := $(PREFIX)/share/man

CC      ?= cc
PKG     ?= pkg-config
FUSE_CFLAGS := $(shell $(PKG) --cflags fuse3)
FUSE_LIBS   := $(shell $(PKG) --libs fuse3)
# Debian's libleveldb-dev ships no .pc file: fall back to -lleveldb.
LDB_CFLAGS  := $(shell $(PKG) --cflags leveldb 2>/dev/null)
LDB_LIBS    := $(shell $(PKG) --libs leveldb 2>/dev/null || echo -lleveldb)
CMOCKA_LIBS := $(shell $(PKG) --libs cmocka)
CURL_CFLAGS := $(shell $(PKG) --cflags libcurl jansson 2>/dev/null)
CURL_LIBS   := $(shell $(PKG) --libs libcurl jansson 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wstrict-prototypes -Wmissing-prototypes
BASE_CFLAGS := -std=gnu11 -g -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread $(WARN) -I.
ifeq ($(SAN),1)
B       := build/san
OPT     := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
B       := build
OPT     := -O2
endif
CFLAGS  ?=
ALL_CFLAGS := $(BASE_CFLAGS) $(OPT) $(CFLAGS)
LDFLAGS ?=
ALL_LDFLAGS := $(OPT) -pthread $(LDFLAGS)

ENGINE_SRC := $(wildcard engine/*.c)
FS_SRC     := $(wildcard fs/*.c)
DAEMON_SRC := $(wildcard daemon/*.c)
TOOL_SRC   := $(wildcard tools/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
CONF_SRC   := $(wildcard tests/conformance/*.c)
BENCH_SRC  := $(wildcard tests/bench/bench_*.c)

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(B)/%.o)
FS_OBJ     := $(FS_SRC:%.c=$(B)/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(B)/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_BIN   := $(TOOL_SRC:tools/%.c=$(B)/%)
BENCH_BIN  := $(BENCH_SRC:tests/bench/%.c=$(B)/bench/%)
CONF_BIN   := $(if $(CONF_SRC),$(B)/conformance)
DAEMON_BIN := $(if $(DAEMON_SRC),$(B)/revfs)

LIB_ENGINE := $(B)/libengine.a
LIB_FS     := $(if $(FS_SRC),$(B)/libfs.a)
ENGINE_LIBS := $(LIB_ENGINE) $(LDB_LIBS) $(CURL_LIBS) -lm

.PHONY: all bins test test-extra test-unit test-san test-valgrind test-integration \
        test-conformance test-examples bench install uninstall clean format \
        check-format check-layers fuzz
all: bins

bins: $(LIB_ENGINE) $(LIB_FS) $(DAEMON_BIN) $(TOOL_BIN) $(UNIT_BIN) $(CONF_BIN) $(BENCH_BIN)

$(B)/engine/%.o: engine/%.c $(wildcard engine/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDB_CFLAGS) $(CURL_CFLAGS) -c -o $@ $<
$(B)/fs/%.o: fs/%.c $(wildcard fs/*.h) engine/engine.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(FUSE_CFLAGS) -c -o $@ $<
$(B)/daemon/%.o: daemon/%.c $(wildcard daemon/*.h fs/*.h) engine/engine.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(FUSE_CFLAGS) -c -o $@ $<

$(LIB_ENGINE): $(ENGINE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(B)/libfs.a: $(FS_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/revfs: $(DAEMON_OBJ) $(LIB_FS) $(LIB_ENGINE)
	$(CC) $(ALL_LDFLAGS) -o $@ $(DAEMON_OBJ) $(LIB_FS) $(ENGINE_LIBS) $(FUSE_LIBS)

$(B)/%: tools/%.c $(LIB_ENGINE) $(wildcard tools/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(ENGINE_LIBS)

$(B)/tests/%: tests/unit/%.c $(LIB_ENGINE) $(LIB_FS) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(FUSE_CFLAGS) $(LDB_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(LIB_FS) $(ENGINE_LIBS) $(FUSE_LIBS) $(CMOCKA_LIBS)

$(B)/conformance: $(CONF_SRC) $(LIB_ENGINE) $(wildcard tests/conformance/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CURL_CFLAGS) $(ALL_LDFLAGS) -o $@ $(CONF_SRC) $(ENGINE_LIBS) $(CURL_LIBS)

$(B)/bench/%: tests/bench/%.c $(LIB_ENGINE)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(LDB_CFLAGS) $(FUSE_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(ENGINE_LIBS) $(FUSE_LIBS)

# ------------------------------------------------------------------ tests
# tests/run.sh runs the suites and ends with "N passed, N failed".
test: bins check-layers check-format
	$(MAKE) SAN=1 bins
	tests/run.sh all

# The slower suites (valgrind, the suite against the sanitizer daemon, the
# etcd backend): CI runs them after make test.
test-extra: bins
	$(MAKE) SAN=1 bins
	tests/run.sh extra

test-unit: bins
	tests/run.sh unit
test-san:
	$(MAKE) SAN=1 bins
	tests/run.sh san
test-valgrind: bins
	tests/run.sh valgrind
test-integration: bins
	tests/run.sh integration
test-conformance: bins
	tests/run.sh conformance
test-examples: bins
	tests/run.sh examples

bench: bins
	tests/bench/run.sh

fuzz:
	tests/fuzz/run.sh

# ---------------------------------------------------------------- install
install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(B)/revfs $(DESTDIR)$(BINDIR)/revfs
	for t in $(TOOL_BIN); do install -m 0755 $$t $(DESTDIR)$(BINDIR)/; done
	if [ -f daemon/mount.fuse.revfs ]; then install -m 0755 daemon/mount.fuse.revfs $(DESTDIR)$(SBINDIR)/mount.fuse.revfs; fi
	for m in docs/*.1; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man1/ || true; done
	for m in docs/*.8; do [ -f "$$m" ] && install -m 0644 $$m $(DESTDIR)$(MANDIR)/man8/ || true; done

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/revfs $(DESTDIR)$(SBINDIR)/mount.fuse.revfs
	for t in $(notdir $(TOOL_BIN)); do rm -f $(DESTDIR)$(BINDIR)/$$t; done
	for m in docs/*.1; do rm -f $(DESTDIR)$(MANDIR)/man1/$$(basename $$m); done
	for m in docs/*.8; do rm -f $(DESTDIR)$(MANDIR)/man8/$$(basename $$m); done

# ------------------------------------------------------------------ style
format:
	clang-format -i $(wildcard engine/*.[ch] fs/*.[ch] daemon/*.[ch] tools/*.[ch] tests/*/*.[ch])
check-format:
	clang-format --dry-run --Werror $(wildcard engine/*.[ch] fs/*.[ch] daemon/*.[ch] tools/*.[ch] tests/*/*.[ch])
# The layering rule: no FUSE in engine/, no LevelDB in fs/.
check-layers:
	@if grep -nE '^#[[:space:]]*include[[:space:]]*[<"][^>"]*fuse' engine/*.[ch]; then echo "check-layers: engine/ includes FUSE"; exit 1; fi
	@if grep -nE '^#[[:space:]]*include[[:space:]]*[<"][^>"]*(leveldb|local_int|eng_int)' fs/*.[ch]; then echo "check-layers: fs/ reaches past engine.h"; exit 1; fi
	@echo "check-layers: ok"

clean:
	rm -rf build
