# mq - durable message queues in a spool directory
#
#   make            build bin/ and the libraries
#   make demo       install build dependencies (Debian, as root), build, show it working
#   make check      install test dependencies, build, run every test (plain + ASan/UBSan)
#   make test       the quick loop (< 1 min): unit tests and a bats subset, default engine
#   make bench      throughput against cat on the same bytes
#   make install    PREFIX=/usr/local DESTDIR=

VERSION  = 0.1.0
PREFIX  ?= /usr/local
BINDIR   = $(PREFIX)/bin
LIBDIR   = $(PREFIX)/lib
INCDIR   = $(PREFIX)/include
MANDIR   = $(PREFIX)/share/man
INSTALL ?= install

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Wshadow -Wvla -Wno-unused-parameter
CPPFLAGS += -std=c11 -D_GNU_SOURCE -D_FORTIFY_SOURCE=2
ALLCFLAGS = $(CPPFLAGS) $(WARN) $(CFLAGS) -fstack-protector-strong -fPIC
# libspool's own libraries; jansson is mq-send's alone (cmd/json_in.c)
LDLIBS   = -luring -lz -lisal
# The programs take liburing, zlib and jansson from their static archives
# (Debian's -dev packages ship them): every shared library is mapped and
# relocated at each start, and page faults are dear on a virtual machine
# (a one-shot mq-send took 96 faults with them shared, 82 without).  ISA-L
# ships no archive and stays shared; so does libc.  libspool.so and the
# unit tests link all of them shared.  DEPS=shared links the programs so
# too, for a distribution that rebuilds nothing when zlib is updated.
DEPS = static
STATIC_static = -Wl,-Bstatic
STATIC_shared =
SHARED_static = -Wl,-Bdynamic
SHARED_shared =
PROG_LDLIBS = $(STATIC_$(DEPS)) -luring -lz $($*_LIBS) $(SHARED_$(DEPS)) -lisal

BIN  = mq-send mq-recv mq-topic mq-replicate
# every libspool/*.c is in the library (the fuzz build takes the same list)
LIBSRC = $(wildcard libspool/*.c)
LIB  = $(notdir $(LIBSRC:.c=.o))
# cmd/: what every program links (CLI; its parsers, CLICORE, are also in
# test_cli and the fuzz targets), then each program's own objects
# (PROG_OBJ) and libraries beyond libspool's (PROG_LIBS)
CLICORE = cli.o cli_own.o cli_parse.o
CLI  = $(CLICORE) jobs.o progress.o
mq-send_OBJ      = mq-send.o json_b64.o json_fast.o json_in.o json_unesc.o \
                   send_input.o send_opts.o send_txn.o send_write.o
mq-send_LIBS     = -ljansson
mq-recv_OBJ      = mq-recv.o recv_exec.o recv_loop.o recv_opts.o recv_out.o recv_src.o
mq-topic_OBJ     = mq-topic.o topic_admin.o topic_describe.o topic_groups.o \
                   topic_stats.o topic_txn.o topic_verify.o
mq-replicate_OBJ = mq-replicate.o replicate_opts.o
HDR  = libspool/spool.h libspool/spool_impl.h libspool/format.h cmd/cli.h cmd/jobs.h \
       cmd/topic.h cmd/recv.h cmd/send.h cmd/json_in.h \
       libspool/proto.h libspool/replicate.h libspool/repl.h
HDR += libspool/schedule.h libspool/txn.h libspool/dedup.h \
    libspool/dedup_search.h
HDR += libspool/compact.h libspool/jsonscan.h
HDR += cmd/replicate_opts.h

# every build output but the programs is under build/: B is the plain
# build's objects and libraries (build/plain) or the sanitizer build's
# (build/asan); the fuzz targets are in build/fuzz
B = build/plain
LIBOBJ = $(LIB:%=$(B)/lib/%)
CLIOBJ = $(CLI:%=$(B)/cmd/%)

all: bin/mq-send bin/mq-recv bin/mq-topic bin/mq-replicate build/plain/libspool.so

# a program: its own objects (mq-topic_OBJ...), the shared ones, the library
.SECONDEXPANSION:
bin/%: $$(addprefix $(B)/cmd/,$$($$*_OBJ)) $(CLIOBJ) $(B)/libspool.a
	@mkdir -p bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PROG_LDLIBS)

$(B)/lib/%.o: libspool/%.c $(HDR)
	@mkdir -p $(B)/lib
	$(CC) $(ALLCFLAGS) -c -o $@ $<

$(B)/cmd/%.o: cmd/%.c $(HDR)
	@mkdir -p $(B)/cmd
	$(CC) $(ALLCFLAGS) -Ilibspool -c -o $@ $<

$(B)/libspool.a: $(LIBOBJ)
	rm -f $@
	ar rcs $@ $^

# the shared library exports what spool.h declares, nothing else
build/plain/libspool.map: libspool/spool.h
	@mkdir -p build/plain
	{ echo 'LIBSPOOL_0 {'; echo 'global:'; \
	  grep -o '\bspool_[a-z0-9_]*(' libspool/spool.h | tr -d '(' | sort -u | \
	      sed 's/.*/	&;/'; \
	  echo 'local:'; echo '	*;'; echo '};'; } > $@

build/plain/libspool.so: $(LIB:%=build/plain/lib/%) build/plain/libspool.map
	$(CC) -shared -Wl,-soname,libspool.so.0 -Wl,--version-script=build/plain/libspool.map \
	    -o $@ $(LIB:%=build/plain/lib/%) $(LDLIBS)

# the same programs built with AddressSanitizer and UBSan, into bin-asan/,
# with the MQ_FAULT test hook of libspool/io.c.  UBSan traps: undefined
# behaviour stops the program at once (SIGILL; with handle_sigill=1 in
# ASAN_OPTIONS, as tests/run.sh sets, ASan prints where).  GCC's UBSan
# runtime is not linked, whose 6 MB of globals LeakSanitizer would scan
# at every exit: a third of each process's cost in the ASan pass.
# `make asan UBSAN=diag` links it, for UBSan's own messages.
UBSAN_trap = -fsanitize-undefined-trap-on-error
UBSAN_diag = -fno-sanitize-recover=undefined
UBSAN_LD_trap =
UBSAN_LD_diag = -fsanitize=undefined
UBSAN = trap
asan:
	@# objects of the other UBSan mode are thrown away, not linked in
	@[ "$$(cat build/asan/ubsan 2>/dev/null)" = "$(UBSAN)" ] || { \
	    rm -rf build/asan bin-asan; mkdir -p build/asan; \
	    echo "$(UBSAN)" > build/asan/ubsan; }
	$(MAKE) B=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined $(UBSAN_$(UBSAN)) -fno-omit-frame-pointer -DSPOOL_FAULTS" \
	    LDFLAGS="-fsanitize=address $(UBSAN_LD_$(UBSAN))" asan-bins

asan-bins: bin-asan/mq-send bin-asan/mq-recv bin-asan/mq-topic bin-asan/mq-replicate

bin-asan/%: $$(addprefix $(B)/cmd/,$$($$*_OBJ)) $(CLIOBJ) $(B)/libspool.a
	@mkdir -p bin-asan
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PROG_LDLIBS)

CLITEST = $(CLICORE:%=$(B)/cmd/%)
tests/unit/test_cli: tests/unit/test_cli.c $(CLITEST) $(B)/libspool.a $(HDR)
	$(CC) $(ALLCFLAGS) -Ilibspool -Icmd -o $@ $< $(CLITEST) $(B)/libspool.a $(LDLIBS)

tests/unit/%: tests/unit/%.c $(B)/libspool.a $(HDR)
	$(CC) $(ALLCFLAGS) -Ilibspool -o $@ $< $(B)/libspool.a $(LDLIBS)

tests/tools/nouring: tests/tools/nouring.c
	$(CC) $(CPPFLAGS) $(WARN) -O2 -o $@ $<

tests/tools/latbench: tests/tools/latbench.c
	$(CC) $(CPPFLAGS) $(WARN) -O2 -o $@ $< -lpthread

# every tests/unit/test_*.c, built beside its source (tests/run.sh runs them there)
UNIT = $(patsubst %.c,%,$(wildcard tests/unit/test_*.c))

deps:
	@sh scripts/deps.sh

deps-check:
	@sh scripts/deps.sh check

demo: deps all
	@bash scripts/demo.sh

check: deps-check all asan $(UNIT) tests/tools/nouring fuzz-bins
	@sh tests/run.sh

# the quick loop, under a minute: the unit tests and one bats pass on the
# default engine over a representative subset, TEST_BATS -- the README's
# tour (every program end to end, as a user pastes it), every flag in its
# four places (97-completions), and contrib/.  No root, no apt (make
# deps installs what is missing).  make check runs every suite, on both
# engines and under ASan; MQ_BINDIR=$PWD/bin bats tests/bats runs them
# all once.
TEST_BATS = tests/bats/15-readme.bats tests/bats/97-completions.bats \
	    tests/bats/99-contrib.bats
test: all $(UNIT)
	@for t in $(UNIT); do ./$$t || exit 1; done
	@command -v bats >/dev/null || { echo "make test: bats is missing; run make deps as root" >&2; exit 1; }
	@MQ_BINDIR=$$(pwd)/bin bats $(TEST_BATS)

bench: all tests/tools/latbench
	@sh scripts/bench.sh

# simulated power failures (tests/powerloss): POWERLOSS_TRIALS a scenario
powerloss: all
	@bash tests/powerloss/powerloss.sh $${POWERLOSS_TRIALS:-300}

lint:
	mandoc -Tlint -Wwarning man/*.[1-8]

install: all
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) \
	    $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	$(INSTALL) -m 0755 $(BIN:%=bin/%) $(DESTDIR)$(BINDIR)
	$(INSTALL) -m 0644 build/plain/libspool.a $(DESTDIR)$(LIBDIR)
	$(INSTALL) -m 0755 build/plain/libspool.so $(DESTDIR)$(LIBDIR)/libspool.so.0
	ln -sf libspool.so.0 $(DESTDIR)$(LIBDIR)/libspool.so
	$(INSTALL) -m 0644 libspool/spool.h $(DESTDIR)$(INCDIR)
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@VERSION@|$(VERSION)|' libspool/libspool.pc.in \
	    > $(DESTDIR)$(LIBDIR)/pkgconfig/libspool.pc
	$(INSTALL) -m 0644 man/*.1 $(DESTDIR)$(MANDIR)/man1
	$(INSTALL) -m 0644 man/*.5 $(DESTDIR)$(MANDIR)/man5
	$(INSTALL) -m 0644 man/*.7 $(DESTDIR)$(MANDIR)/man7
	$(INSTALL) -m 0644 completions/mq.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/mq-send
	for b in mq-recv mq-topic mq-replicate; do \
	    ln -sf mq-send $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$b; done
	$(INSTALL) -m 0644 completions/_mq $(DESTDIR)$(PREFIX)/share/zsh/site-functions
	# fish loads completions by command name: one file each
	$(INSTALL) -m 0644 completions/mq.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/mq-send.fish
	for b in mq-recv mq-topic mq-replicate; do \
	    ln -sf mq-send.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$b.fish; done

uninstall:
	rm -f $(BIN:%=$(DESTDIR)$(BINDIR)/%) $(DESTDIR)$(LIBDIR)/libspool.a \
	    $(DESTDIR)$(LIBDIR)/libspool.so.0 $(DESTDIR)$(LIBDIR)/libspool.so \
	    $(DESTDIR)$(INCDIR)/spool.h $(DESTDIR)$(LIBDIR)/pkgconfig/libspool.pc \
	    $(DESTDIR)$(MANDIR)/man1/mq-send.1 $(DESTDIR)$(MANDIR)/man1/mq-recv.1 \
	    $(DESTDIR)$(MANDIR)/man1/mq-topic.1 $(DESTDIR)$(MANDIR)/man1/mq-replicate.1 $(DESTDIR)$(MANDIR)/man5/mq-spool.5 \
	    $(DESTDIR)$(MANDIR)/man7/mq.7 \
	    $(BIN:%=$(DESTDIR)$(PREFIX)/share/bash-completion/completions/%) \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_mq \
	    $(BIN:%=$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/%.fish)

clean:
	rm -rf bin bin-asan build $(UNIT) tests/tools/nouring \
	    tests/tools/latbench

# fuzz targets (make fuzz, make fuzz-check) and the crash harness
-include tests/fuzz/fuzz.mk
-include tests/crash/crash.mk

.PHONY: all asan asan-bins deps deps-check demo check test bench powerloss lint install \
	uninstall clean
.SECONDARY:
