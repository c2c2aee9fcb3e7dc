# qcowshim - one non-recursive Makefile.
#
#   make            build/libqcow.a, build/libqcowshim.so, build/qcowshim
#   make test       deps, a parallel build, then unit tests (ASan+UBSan) and the
#                   integration tests, several at a time (docs/TESTING.md)
#   make demo       deps, then an end-to-end job on a fresh image
#   make bench      issue 5's performance table (tests/bench/run.sh; BENCH_* env)
#   make musl       build-musl/: the shim for musl-linked programs (musl-gcc)
#   make stress     long crash, power-cut, thread and multi-process runs (tests/stress/run.sh)
#   make fuzz       libFuzzer over qcow_open + random I/O (FUZZ_RUNS, FUZZ_TIME; clang)
#   make deps       install missing Debian packages (or print the command)
#   make examples   build/examples/raw2qcow2 (examples/raw2qcow2.c on libqcow.a)
#   make install    PREFIX (default /usr/local) and DESTDIR honoured; make uninstall
#   make clean

CC      ?= cc
CFLAGS  ?= -O2 -g
PREFIX  ?= /usr/local
B       := build
# The version's one place: debian/changelog's first line (without a Debian
# revision); the wrapper, the installed man pages and the package take it.
VERSION := $(shell sed -n '1s/^qcowshim (\([^)-]*\).*/\1/p' debian/changelog)

WARN    := -Wall -Wextra -Werror
BASE    := -std=gnu11 $(WARN) -D_GNU_SOURCE -fPIC -fvisibility=hidden
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LIBS    := -lz -lzstd -lpthread
# The shim loads zlib and libzstd itself at the first compressed cluster
# (qcow/compress.c): a preloaded process that never meets one maps neither.
SHIM_LIBS := -ldl -lpthread

.PHONY: all test unit integration deps demo clean shim-test shim-san bench examples install uninstall \
	stress fuzz
all: $(B)/libqcow.a $(B)/libqcowshim.so $(B)/qcowshim $(B)/qcowtool

# ---- qcow/: the translator library ---------------------------------------
QCOW_SRC := $(wildcard qcow/*.c)
QCOW_HDR := $(wildcard qcow/*.h)
QCOW_OBJ := $(QCOW_SRC:%.c=$(B)/%.o)
QCOW_SAN_OBJ := $(QCOW_SRC:%.c=$(B)/san/%.o)

$(B)/qcow/%.o: qcow/%.c $(QCOW_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE) -D_FILE_OFFSET_BITS=64 $(CFLAGS) -c -o $@ $<

$(B)/san/qcow/%.o: qcow/%.c $(QCOW_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE) -D_FILE_OFFSET_BITS=64 -DQC_TEST -O1 -g $(SAN) -c -o $@ $<

$(B)/libqcow.a: $(QCOW_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/san/libqcow.a: $(QCOW_SAN_OBJ)
	rm -f $@ && ar rcs $@ $^

# ---- shim/: the interposition layer (libqcowshim.so + the qcowshim wrapper)
SHIM_SRC := $(wildcard shim/*.c)
SHIM_OBJ := $(SHIM_SRC:%.c=$(B)/%.o)

# _FILE_OFFSET_BITS must stay undefined here: the shim defines both the
# plain and the *64 symbols, and glibc would otherwise rename one onto the other.
# _FORTIFY_SOURCE off: the shim defines the functions fortify wraps inline.
$(B)/shim/%.o: shim/%.c $(wildcard shim/*.h shim/*.def) qcow/qcow.h
	@mkdir -p $(@D)
	$(CC) $(BASE) -U_FORTIFY_SOURCE -Iqcow $(CFLAGS) -c -o $@ $<

# The version script is generated from the symbol table: exports = syms.def.
$(B)/shim/exports.map: shim/exports.map.in shim/syms.def
	@mkdir -p $(@D)
	$(CC) -E -P -x c -Ishim $< | grep -v '^ *$$' > $@

# -Bsymbolic-functions: the shim's references to its own wrappers (init.c's
# table) bind at link time, not by 120 symbol lookups in every process.
$(B)/libqcowshim.so: $(SHIM_OBJ) $(B)/libqcow.a $(B)/shim/exports.map
	$(CC) -shared -o $@.tmp $(SHIM_OBJ) $(B)/libqcow.a $(SHIM_LIBS) -Wl,-z,defs \
		-Wl,-Bsymbolic-functions -Wl,--version-script=$(B)/shim/exports.map
	mv -f $@.tmp $@ # atomic: a program starting now never loads half a library

# tests/shim: one snippet program per syms.def row (built by the test script).
shim-test: $(B)/libqcowshim.so
	@sh tests/integration/t_shim_symbols.sh && sh tests/integration/t_shim_semantics.sh

# The same tests against an ASan+UBSan build of the shim and the library.
SHIM_SAN_OBJ := $(SHIM_SRC:%.c=$(B)/san/%.o)
$(B)/san/shim/%.o: shim/%.c $(wildcard shim/*.h shim/*.def) qcow/qcow.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -fPIC -fvisibility=hidden -U_FORTIFY_SOURCE -Iqcow -O1 -g $(SAN) -c -o $@ $<

$(B)/san/libqcowshim.so: $(SHIM_SAN_OBJ) $(B)/san/libqcow.a $(B)/shim/exports.map
	$(CC) -shared $(SAN) -o $@ $(SHIM_SAN_OBJ) $(B)/san/libqcow.a $(SHIM_LIBS) \
		-Wl,--version-script=$(B)/shim/exports.map

shim-san: $(B)/san/libqcowshim.so
	@ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1 \
		QCS_BUILD=$(abspath $(B))/san sh -c 'sh tests/integration/t_shim_symbols.sh && sh tests/integration/t_shim_semantics.sh'

$(B)/qcowshim: shim/qcowshim.in debian/changelog
	@mkdir -p $(@D)
	sed -e 's|@LIBDIR@|$(abspath $(B))|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@ && chmod +x $@

# ---- tests/tools: small programs the integration tests drive ---------------
$(B)/qcowtool: tests/tools/qcowtool.c $(B)/libqcow.a qcow/qcow.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(CFLAGS) -Iqcow -o $@ $< $(B)/libqcow.a $(LIBS)

# ---- examples/: the C example uses qcow/ directly as a library -----------
examples: $(B)/examples/raw2qcow2
$(B)/examples/raw2qcow2: examples/raw2qcow2.c $(B)/libqcow.a qcow/qcow.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_FILE_OFFSET_BITS=64 $(CFLAGS) -Iqcow -o $@ $< $(B)/libqcow.a $(LIBS)

# ---- make install / uninstall ---------------------------------------------
# The installed wrapper names the installed library directory (without
# DESTDIR: that is only a staging root), never the build directory.
LIBDIR   := $(PREFIX)/lib/qcowshim
BINDIR   := $(PREFIX)/bin
MANDIR   := $(PREFIX)/share/man
DOCDIR   := $(PREFIX)/share/doc/qcowshim
EX_SH    := $(wildcard examples/*.sh)
EXAMPLES := $(EX_SH) $(wildcard examples/*.c)
DOCS     := $(wildcard docs/*.md)
INSTALLED := $(LIBDIR)/libqcowshim.so $(BINDIR)/qcowshim $(MANDIR)/man1/qcowshim.1 \
	$(MANDIR)/man7/libqcowshim.7 $(DOCDIR)/README.md $(DOCDIR)/LICENSE \
	$(EXAMPLES:%=$(DOCDIR)/%) $(DOCS:%=$(DOCDIR)/%)
# A system install (root, no DESTDIR) registers LIBDIR with the loader, as
# fakeroot's package does for its private directory, so that
# LD_PRELOAD=libqcowshim.so finds the library by its bare name: one file in
# /etc/ld.so.conf.d named after PREFIX (installs under two prefixes do not
# share it), then ldconfig.  A per-user install prints what to use instead;
# a staged one (DESTDIR) leaves it to the package (debian/rules).
LDSO_DIR  := /etc/ld.so.conf.d
LDSO_CONF := $(LDSO_DIR)/qcowshim$(subst /,-,$(PREFIX)).conf
LDCONFIG  := $(firstword $(wildcard /sbin/ldconfig /usr/sbin/ldconfig) ldconfig)

# The wrapper and the man pages are generated at every install (PREFIX may
# differ from the last); the version is debian/changelog's (VERSION above).
install: $(B)/libqcowshim.so
	@mkdir -p $(B)/install
	sed -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@VERSION@|$(VERSION)|g' shim/qcowshim.in > $(B)/install/qcowshim
	for m in qcowshim.1 libqcowshim.7; do \
		sed 's/^\.Os$$/.Os qcowshim $(VERSION)/' man/$$m > $(B)/install/$$m || exit 1; done
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR)/docs
	install -m 0755 $(B)/libqcowshim.so $(DESTDIR)$(LIBDIR)/libqcowshim.so
	install -m 0755 $(B)/install/qcowshim $(DESTDIR)$(BINDIR)/qcowshim
	install -m 0644 $(B)/install/qcowshim.1 $(DESTDIR)$(MANDIR)/man1/qcowshim.1
	install -m 0644 $(B)/install/libqcowshim.7 $(DESTDIR)$(MANDIR)/man7/libqcowshim.7
	install -m 0644 README.md LICENSE $(DESTDIR)$(DOCDIR)/
	install -m 0755 $(EX_SH) $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 $(filter %.c,$(EXAMPLES)) $(DESTDIR)$(DOCDIR)/examples/
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/docs/
ifeq ($(DESTDIR),)
	@if [ "$$(id -u)" = 0 ]; then \
		echo 'echo $(LIBDIR) > $(LDSO_CONF) && $(LDCONFIG)'; \
		echo '$(LIBDIR)' > '$(LDSO_CONF)' && $(LDCONFIG); \
	else \
		echo "qcowshim: per-user install: use '$(BINDIR)/qcowshim PROG', or LD_PRELOAD=$(LIBDIR)/libqcowshim.so (the bare name needs a root install)"; \
	fi
endif

# Exactly what install put there, then the qcowshim directories if empty;
# the loader's entry (root, no DESTDIR) if install made one, then ldconfig.
uninstall:
	rm -f $(INSTALLED:%=$(DESTDIR)%)
	rmdir $(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR)/docs $(DESTDIR)$(DOCDIR) $(DESTDIR)$(LIBDIR) 2>/dev/null || :
ifeq ($(DESTDIR),)
	@if [ -f '$(LDSO_CONF)' ] && [ "$$(cat '$(LDSO_CONF)')" = '$(LIBDIR)' ]; then \
		echo 'rm -f $(LDSO_CONF) && $(LDCONFIG)'; rm -f '$(LDSO_CONF)' && $(LDCONFIG); fi
endif

# ---- make deb / test-deb: the Debian package (docs/TESTING.md) -----------
# dpkg-buildpackage writes next to the source tree, so the package is built
# from a copy in $(B)/deb: nothing is written outside the build directory.
# lintian must report no error (its warnings are listed in docs/USING.md).
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null)
DEB      = $(B)/deb/qcowshim_$(VERSION)_$(DEB_ARCH).deb
.PHONY: deb test-deb test-boot
deb:
	@sh tests/deps.sh
	rm -rf $(B)/deb && mkdir -p $(B)/deb/qcowshim-$(VERSION)
	tar --exclude=./build --exclude=./build-musl --exclude=./.git -cf - . | \
		tar -C $(B)/deb/qcowshim-$(VERSION) -xf -
	cd $(B)/deb/qcowshim-$(VERSION) && dpkg-buildpackage -b -us -uc >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	rm -rf $(B)/deb/qcowshim-$(VERSION)
	lintian --fail-on error $(B)/deb/qcowshim_$(VERSION)_$(DEB_ARCH).changes
	@ls $(DEB)

# Installs the package on this machine, uses it, purges it (root).
test-deb: deb
	@QCS_DEB=$(abspath $(DEB)) sh tests/integration/run.sh tests/system/s_deb.sh; rc=$$?; \
		cat $(B)/integration/s_deb.log; exit $$rc

# Builds a UEFI-bootable image under the shim and boots it (qemu, OVMF).
test-boot: all
	@sh tests/deps.sh
	@sh tests/integration/run.sh tests/system/s_boot.sh; rc=$$?; \
		cat $(B)/integration/s_boot.log; exit $$rc

# ---- tests/unit: criterion, built with ASan + UBSan ----------------------
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_HELP := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(B)/unit/%)
UNIT_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DQC_TEST -O1 -g $(SAN) \
	-Iqcow -Itests/unit
# The helpers (qt_*.c) are compiled once, not once per test binary.
UNIT_HELP_OBJ := $(UNIT_HELP:tests/unit/%.c=$(B)/unit/obj/%.o)
# Kept after the link (make would delete them as intermediates and rebuild
# every test binary the next time).
.SECONDARY: $(UNIT_HELP_OBJ)

$(B)/unit/obj/%.o: tests/unit/%.c $(wildcard tests/unit/*.h) qcow/qcow.h
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -c -o $@ $<

$(B)/unit/%: tests/unit/%.c $(UNIT_HELP_OBJ) $(wildcard tests/unit/*.h) $(B)/san/libqcow.a
	@mkdir -p $(@D)
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(UNIT_HELP_OBJ) $(B)/san/libqcow.a -lcriterion $(LIBS)

# test_parttab tests shim/parttab.c, which is pure (no interposition): built in.
$(B)/unit/test_parttab: tests/unit/test_parttab.c shim/parttab.c shim/parttab.h shim/crc32.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g $(SAN) -Ishim -o $@ $< shim/parttab.c \
		shim/crc32.c -lcriterion -lz

# The binaries are independent (each test in its own process, temporary
# files from mkstemp): NPROC of them run at once, each with 2 criterion
# workers; their logs are then shown in order.  A binary that runs no test
# (a criterion start-up failure) fails too.
NPROC := $(shell nproc 2>/dev/null || echo 2)
unit: $(UNIT_BIN)
	@rm -rf $(B)/unit/log; mkdir -p $(B)/unit/log
	@printf '%s\n' $(UNIT_BIN) | xargs -P $(NPROC) -I{} sh -c \
		'log=$(B)/unit/log/$${1##*/}; ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$$1" --jobs 2 >$$log.log 2>&1; echo $$? >$$log.rc' sh {}
	@fail=0; for t in $(UNIT_BIN); do \
		echo "== $$t"; log=$(B)/unit/log/$${t##*/}; cat $$log.log; \
		[ "$$(cat $$log.rc)" = 0 ] || fail=1; \
		grep -q 'Synthesis: Tested: [1-9]' $$log.log || { echo "$$t: ran no test"; fail=1; }; \
		done; exit $$fail

# ---- tests/hostile + tests/fuzz/regress: malformed images (t_hostile.sh) --
HOSTILE_BIN := $(B)/hostile/mkhostile $(B)/hostile/hostile_io $(B)/hostile/fuzz_replay
$(B)/hostile/mkhostile: tests/hostile/mkhostile.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O1 -g -o $@ $<
# No sanitizer: t_hostile.sh runs it under ulimit -v.
$(B)/hostile/hostile_io: tests/hostile/hostile_io.c $(B)/libqcow.a qcow/qcow.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(CFLAGS) -Iqcow -o $@ $< $(B)/libqcow.a $(LIBS)
# The libFuzzer harness as a plain ASan+UBSan program replaying tests/fuzz/regress.
# The refcount-walk oracle is tests/unit/qt_check.c (qt_util.c: its helpers).
FUZZ_HELP := tests/unit/qt_check.c tests/unit/qt_util.c
$(B)/hostile/fuzz_replay: tests/fuzz/fuzz_qcow.c $(FUZZ_HELP) tests/unit/qt.h $(B)/san/libqcow.a qcow/qcow.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -DFUZZ_REPLAY -O1 -g $(SAN) \
		-Iqcow -Itests/unit -o $@ $< $(FUZZ_HELP) $(B)/san/libqcow.a $(LIBS)

# ---- tests/integration: real tools and qemu-img as the oracle -------------
integration: all examples $(HOSTILE_BIN) $(B)/stress/stresskill $(B)/stress/crashpoints \
	$(B)/stress/multiproc $(B)/tsan/libqcowshim.so $(B)/tsan/threads_tsan
	@sh tests/integration/run.sh

# ---- musl flavour: make musl -> build-musl/ (README "musl") ---------------
# The same sources compiled by musl-gcc into their own directory, so both
# flavours coexist; `make CC=musl-gcc B=DIR` is the same thing by hand.
# qcow/ is built without zlib/zstd (Debian has no musl-linked ones, and a
# glibc-built libz must not enter a musl process): deflate clusters go
# through qcow/inflate.c, zstd ones are ENOTSUP.  musl-gcc sees only musl's headers, so the kernel's
# UAPI headers (linux/, asm/) are linked into $(B)/kinc.
MUSL_CC ?= musl-gcc
MUSL_B  := build-musl
ifneq ($(findstring musl,$(notdir $(CC))),)
LIBS    := -lpthread
BASE    += -DQCOW_NO_CODECS -isystem $(B)/kinc
$(SHIM_OBJ) $(B)/qcowtool: | $(B)/kinc
$(B)/qcowtool: CFLAGS += -isystem $(B)/kinc
$(B)/kinc:
	@mkdir -p $@
	ln -sfn /usr/include/linux $@/linux
	ln -sfn /usr/include/asm-generic $@/asm-generic
	ln -sfn /usr/include/$$(gcc -print-multiarch)/asm $@/asm
endif
$(B)/shim/exports.map: shim/libc.h

.PHONY: musl musl-test musl-shim-test clean-musl
musl:
	@$(MAKE) --no-print-directory CC=$(MUSL_CC) B=$(MUSL_B) \
		$(MUSL_B)/libqcowshim.so $(MUSL_B)/qcowshim $(MUSL_B)/qcowtool

# tests/integration/t_musl.sh alone; musl-shim-test: with every snippet row
# that can run here (about a minute).
musl-test: musl
	@sh tests/integration/t_musl.sh
musl-shim-test: musl
	@MUSL_ROWS=all sh tests/integration/t_musl.sh

# make test: the musl flavour's tests (t_musl.sh) need it when musl-gcc exists.
ifneq ($(shell command -v $(MUSL_CC) 2>/dev/null),)
integration: musl
endif

clean: clean-musl
clean-musl:
	rm -rf $(MUSL_B)

# ---- tests/stress: make stress (long runs; short runs are in make test) ----
# STRESS_TRIALS (kill -9 trials, default 400), STRESS_POINTS (power cuts, 5000).
$(B)/stress/stresskill: tests/stress/stresskill.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O2 -g -o $@ $<

$(B)/stress/multiproc: tests/stress/multiproc.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O2 -g -o $@ $<

# Optimized, not sanitized: thousands of points (the unit tests run the same
# crash model under ASan+UBSan).
$(B)/stress/crashpoints: tests/stress/crashpoints.c $(UNIT_HELP) $(wildcard tests/unit/*.h) $(B)/libqcow.a
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(CFLAGS) \
		-Iqcow -Itests/unit -o $@ $< $(UNIT_HELP) $(B)/libqcow.a $(LIBS)

# The mutation check of make stress: the same driver on a library whose
# reservation is not made durable (alloc.c's reserve leaves its refcount
# blocks dirty in the cache, to be written like any other, and skips the
# fdatasync that puts blocks written without RWF_DSYNC ahead of its table
# entries).  The power cuts must catch it; the build fails if the two
# edits no longer apply.
$(B)/mutant/qcow/alloc.c: qcow/alloc.c
	@mkdir -p $(@D)
	sed -e 's/(r = qc_cache_flush_sync(q, &q->rb_cache)) < 0)/0)/' \
		-e 's/if (q->ord_unsynced \&\& (r = qc_sync(q)) < 0)/if (0 \&\& (r = qc_sync(q)) < 0)/' $< >$@
	@[ "$$(diff $< $@ | grep -c '^>')" = 2 ] || \
		{ echo "mutant: the edits did not apply to qcow/alloc.c" >&2; rm -f $@; exit 1; }
$(B)/stress/crashpoints_mutant: tests/stress/crashpoints.c $(UNIT_HELP) $(wildcard tests/unit/*.h) \
		$(B)/mutant/qcow/alloc.c $(QCOW_SRC) $(QCOW_HDR)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 $(CFLAGS) -Iqcow -Itests/unit \
		-o $@ $< $(UNIT_HELP) $(B)/mutant/qcow/alloc.c $(filter-out qcow/alloc.c,$(QCOW_SRC)) $(LIBS)

# ThreadSanitizer builds of the library and the shim, and the threads driver.
TSAN := -fsanitize=thread -fno-omit-frame-pointer
$(B)/tsan/qcow/%.o: qcow/%.c $(QCOW_HDR)
	@mkdir -p $(@D)
	$(CC) $(BASE) -D_FILE_OFFSET_BITS=64 -O1 -g $(TSAN) -c -o $@ $<

$(B)/tsan/libqcow.a: $(QCOW_SRC:%.c=$(B)/tsan/%.o)
	rm -f $@ && ar rcs $@ $^

$(B)/tsan/shim/%.o: shim/%.c $(wildcard shim/*.h shim/*.def) qcow/qcow.h
	@mkdir -p $(@D)
	$(CC) $(BASE) -U_FORTIFY_SOURCE -Iqcow -O1 -g $(TSAN) -c -o $@ $<

$(B)/tsan/libqcowshim.so: $(SHIM_SRC:%.c=$(B)/tsan/%.o) $(B)/tsan/libqcow.a $(B)/shim/exports.map
	$(CC) -shared $(TSAN) -o $@ $(SHIM_SRC:%.c=$(B)/tsan/%.o) $(B)/tsan/libqcow.a $(SHIM_LIBS) \
		-Wl,--version-script=$(B)/shim/exports.map

$(B)/tsan/threads_tsan: tests/stress/threads_tsan.c $(B)/tsan/libqcow.a qcow/qcow.h
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O1 -g $(TSAN) -Iqcow \
		-o $@ $< $(B)/tsan/libqcow.a $(LIBS)

STRESS_BIN := $(B)/stress/stresskill $(B)/stress/crashpoints $(B)/stress/multiproc \
	$(B)/stress/crashpoints_mutant \
	$(B)/tsan/libqcowshim.so \
	$(B)/tsan/threads_tsan

stress: all $(STRESS_BIN) $(UNIT_BIN)
	@sh tests/stress/run.sh

# ---- set-up and housekeeping ----------------------------------------------
deps:
	@sh tests/deps.sh

# make test: everything is built by one parallel make (-j NPROC), then the
# unit binaries and the integration scripts run several at a time (see
# docs/TESTING.md); the last line sums up scripts, assertions and seconds.
TEST_BUILD := all examples $(UNIT_BIN) $(HOSTILE_BIN) $(STRESS_BIN)
ifneq ($(shell command -v $(MUSL_CC) 2>/dev/null),)
TEST_BUILD += musl
endif
# The unit binaries run beside the integration scripts (their output is
# shown once the scripts are done): the longest unit binary is as long as
# the longest script.
test:
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory deps && \
	$(MAKE) --no-print-directory -j$(NPROC) $(TEST_BUILD) && \
	{ $(MAKE) --no-print-directory unit >$(B)/unit.out 2>&1 & up=$$!; \
	  $(MAKE) --no-print-directory integration; i=$$?; wait $$up; u=$$?; \
	  cat $(B)/unit.out; [ $$u = 0 ] && [ $$i = 0 ]; }; \
	rc=$$?; sh tests/summary.sh "$$start" $(B); exit $$rc

# ---- tests/bench: make bench (timings, never part of make test) -----------
$(B)/bench/benchio: tests/bench/benchio.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O2 -g -o $@ $<

bench: all $(B)/bench/benchio
	@sh tests/deps.sh || echo "make bench: continuing; cases whose tools are missing are skipped" >&2
	@bash tests/bench/run.sh

demo:
	@$(MAKE) --no-print-directory deps
	@$(MAKE) --no-print-directory all
	@sh examples/demo.sh

clean:
	rm -rf $(B)

# ---- tests/fuzz: make fuzz (libFuzzer, clang; never part of make test) ----
#   FUZZ_RUNS=N   stop after N executions (default: unbounded)
#   FUZZ_TIME=S   stop after S seconds (default 60)
# The corpus lives in build/fuzz/corpus (seeded from qemu-made images).
FUZZ_CC   ?= clang
FUZZ_RUNS ?= -1
FUZZ_TIME ?= 60
FUZZ_SAN  := -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# The oracle's walk is built without coverage: libFuzzer must steer by the
# library's branches, not the checker's (and the walk runs twice per input).
$(B)/fuzz/fuzz_qcow: tests/fuzz/fuzz_qcow.c $(FUZZ_HELP) tests/unit/qt.h $(QCOW_SRC) $(QCOW_HDR)
	@mkdir -p $(@D)
	@command -v $(FUZZ_CC) >/dev/null || FUZZ_PKGS=clang sh tests/deps.sh
	$(FUZZ_CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O1 -g \
		-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
		-Iqcow -Itests/unit -c -o $(B)/fuzz/qt_check.o tests/unit/qt_check.c
	$(FUZZ_CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O1 -g \
		-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
		-Iqcow -Itests/unit -c -o $(B)/fuzz/qt_util.o tests/unit/qt_util.c
	$(FUZZ_CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -O1 -g $(FUZZ_SAN) \
		-Iqcow -Itests/unit -o $@ tests/fuzz/fuzz_qcow.c $(B)/fuzz/qt_check.o $(B)/fuzz/qt_util.o \
		$(QCOW_SRC) $(LIBS)

fuzz: $(B)/fuzz/fuzz_qcow
	@sh tests/deps.sh
	@rm -rf $(B)/fuzz/seeds && sh tests/fuzz/seeds.sh $(B)/fuzz/seeds
	@mkdir -p $(B)/fuzz/corpus $(B)/fuzz/crash
	cd $(B)/fuzz && ASAN_OPTIONS=detect_leaks=1 ./fuzz_qcow -runs=$(FUZZ_RUNS) \
		-max_total_time=$(FUZZ_TIME) -max_len=262144 -rss_limit_mb=2048 -timeout=10 \
		-artifact_prefix=crash/ -print_final_stats=1 corpus seeds
