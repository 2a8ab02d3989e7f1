# tests/fuzz/fuzz.mk - libFuzzer targets for every parser of bytes from
# disk or from the user; included by the main Makefile, or standalone:
#
#   make -f Makefile -f tests/fuzz/fuzz.mk fuzz         # FUZZ_SECONDS each
#   make -f Makefile -f tests/fuzz/fuzz.mk fuzz-check   # 10 s each + regress/, TAP
#   make -f Makefile -f tests/fuzz/fuzz.mk fuzz-bins    # build only
#
# Needs clang with libFuzzer (Debian: clang-14 and libclang-rt-14-dev).
# The library sources (the main Makefile's LIBSRC, CLICORE and HDR) are
# compiled in with the fuzz flags into build/fuzz/obj, not linked from
# build/plain; the targets are build/fuzz/bin/TARGET.  Runs never write
# into corpus/: each target works on a copy in a temporary directory;
# what it finds lands in findings/TARGET/.

# keep the including Makefile's default goal
FUZZ_SAVED_GOAL := $(.DEFAULT_GOAL)

FUZZ_DIR      := tests/fuzz
FUZZ_OUT      := build/fuzz
FUZZ_CC       ?= $(firstword $(shell command -v clang-14 clang 2>/dev/null) clang)
FUZZ_CFLAGS   ?= -g -O1
FUZZ_SECONDS  ?= 60
FUZZ_SAN       = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                 -fno-omit-frame-pointer
FUZZ_ALLFLAGS  = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
                 $(FUZZ_CFLAGS) $(FUZZ_SAN) -Ilibspool -Icmd
FUZZ_LDLIBS    = -luring -lz -ljansson -lisal

FUZZ_TARGETS   = fuzz_batch fuzz_segment fuzz_config fuzz_json fuzz_cli fuzz_offsets \
                 fuzz_proto
FUZZ_BINS      = $(FUZZ_TARGETS:%=$(FUZZ_OUT)/bin/%)
FUZZ_LIBOBJ    = $(LIBSRC:libspool/%.c=$(FUZZ_OUT)/obj/lib/%.o)
FUZZ_CLIOBJ    = $(CLICORE:%=$(FUZZ_OUT)/obj/cmd/%) $(FUZZ_OUT)/obj/cmd/json_in.o \
                 $(FUZZ_OUT)/obj/cmd/json_fast.o $(FUZZ_OUT)/obj/cmd/json_b64.o \
                 $(FUZZ_OUT)/obj/cmd/json_unesc.o
FUZZ_HDR       = $(HDR) $(FUZZ_DIR)/fuzz_common.h

$(FUZZ_OUT)/obj/lib/%.o: libspool/%.c $(FUZZ_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_ALLFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_OUT)/obj/cmd/%.o: cmd/%.c $(FUZZ_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_ALLFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_OUT)/bin/%: $(FUZZ_DIR)/%.c $(FUZZ_LIBOBJ) $(FUZZ_CLIOBJ) $(FUZZ_HDR)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_ALLFLAGS) -fsanitize=fuzzer -o $@ $< \
	    $(FUZZ_LIBOBJ) $(FUZZ_CLIOBJ) $(FUZZ_LDLIBS)

fuzz-bins: $(FUZZ_BINS)

fuzz: fuzz-bins
	@FUZZ_BINDIR=$(FUZZ_OUT)/bin sh $(FUZZ_DIR)/run.sh fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-check: fuzz-bins
	@FUZZ_BINDIR=$(FUZZ_OUT)/bin sh $(FUZZ_DIR)/run.sh check 10 $(FUZZ_TARGETS)

fuzz-clean:
	rm -rf $(FUZZ_OUT)

.PHONY: fuzz fuzz-check fuzz-bins fuzz-clean

.DEFAULT_GOAL := $(FUZZ_SAVED_GOAL)
