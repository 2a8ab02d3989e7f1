# tests/crash/crash.mk - the crash-test harness (tests/crash/crash.sh):
# writers, readers and admin commands killed with SIGKILL at random
# moments, then the invariants of mq(7) and mq-spool(5) checked.
# Included by the main Makefile:
#
#   make crash           # CRASH_TRIALS trials (default 1000)
#   make crash-check     # 60 trials, one TAP line per scenario, < 90 s
#   make crash-id        # 60 trials of mq-send --id killed and retried
#
# MQ_BINDIR chooses the binaries (default bin/; e.g. MQ_BINDIR=$PWD/bin-asan
# after `make asan`).  CRASH_SEED replays a run's random choices.  Each run
# works in a fresh ${TMPDIR:-/tmp}/mq-crash.XXXXXX, removed when nothing
# broke; the trials that broke an invariant are kept in its failed/.

# keep the including Makefile's default goal
CRASH_SAVED_GOAL := $(.DEFAULT_GOAL)

CRASH_DIR          := tests/crash
CRASH_TRIALS       ?= 1000
CRASH_CHECK_TRIALS ?= 60
CRASH_BINDIR        = $(if $(MQ_BINDIR),$(MQ_BINDIR),$(CURDIR)/bin)
CRASH_ARGS          = $(if $(CRASH_SEED),--seed $(CRASH_SEED))

crash: all
	@MQ_BINDIR=$(CRASH_BINDIR) bash $(CRASH_DIR)/crash.sh -n $(CRASH_TRIALS) $(CRASH_ARGS)

crash-check: all
	@MQ_BINDIR=$(CRASH_BINDIR) bash $(CRASH_DIR)/crash.sh -n $(CRASH_CHECK_TRIALS) $(CRASH_ARGS)

# only the mq-send --id scenario: killed at a system call or a delay, retried
crash-id: all
	@MQ_BINDIR=$(CRASH_BINDIR) bash $(CRASH_DIR)/crash.sh -n $(CRASH_CHECK_TRIALS) -s send-id $(CRASH_ARGS)

.PHONY: crash crash-check crash-id

.DEFAULT_GOAL := $(CRASH_SAVED_GOAL)
