#!/usr/bin/env bats
# make install into a DESTDIR, a program built against the installed
# library with pkg-config, and make uninstall leaving nothing behind

load helpers

@test "install, build against libspool with pkg-config, uninstall" {
	[[ $MQ_BINDIR == "$MQ_REPO/bin" || $MQ_BINDIR == "$MQ_REPO/bin-asan" ]] ||
		skip "needs the repository's own build (MQ_BINDIR=$MQ_BINDIR)"
	local d="$BATS_TEST_TMPDIR/dest" prefix=/opt/mq
	run make -s -C "$MQ_REPO" install DESTDIR="$d" PREFIX="$prefix"
	expect_status 0
	local f
	for f in bin/mq-send bin/mq-recv bin/mq-topic include/spool.h \
	    lib/libspool.so.0 lib/libspool.a lib/pkgconfig/libspool.pc \
	    share/man/man1/mq-send.1 share/man/man5/mq-spool.5 share/man/man7/mq.7 \
	    share/bash-completion/completions/mq-recv share/zsh/site-functions/_mq \
	    share/fish/vendor_completions.d/mq-send.fish \
	    share/fish/vendor_completions.d/mq-topic.fish; do
		[[ -e $d$prefix/$f ]] || { echo "not installed: $f" >&2; false; }
	done
	# the shared library exports spool.h's functions and nothing else
	diff <(nm -D --defined-only "$d$prefix/lib/libspool.so.0" |
	    awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' | sort) \
	    <(grep -o '\bspool_[a-z0-9_]*(' "$MQ_REPO/libspool/spool.h" | tr -d '(' | sort -u)
	cat >"$BATS_TEST_TMPDIR/count.c" <<'C'
#include <stdio.h>
#include <spool.h>

int
main(int argc, char *argv[])
{
	struct spool *sp;
	struct spool_topic *t;
	struct spool_part_info pi;

	if (argc != 3 || spool_open(&sp, argv[1], 0) < 0 ||
	    spool_topic_open(sp, argv[2], &t) < 0 ||
	    spool_topic_info(t, 0, &pi) < 0)
		return 1;
	printf("%llu\n", (unsigned long long)(pi.next - pi.first));
	spool_topic_close(t);
	spool_close(sp);
	return 0;
}
C
	export PKG_CONFIG_PATH="$d$prefix/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$d"
	run pkg-config --cflags --libs libspool
	expect_status 0
	expect_contains "-lspool"
	# spool.h is ISO C: it builds with no POSIX feature macro
	run cc -std=c11 -pedantic -Wall -Werror \
	    -o "$BATS_TEST_TMPDIR/count" "$BATS_TEST_TMPDIR/count.c" \
	    $(pkg-config --cflags --libs libspool) -Wl,-rpath,"$d$prefix/lib"
	expect_status 0
	seq 7 | mq-send t
	run "$BATS_TEST_TMPDIR/count" "$MQ_SPOOL" t
	expect_status 0
	expect_output 7
	run make -s -C "$MQ_REPO" uninstall DESTDIR="$d" PREFIX="$prefix"
	expect_status 0
	run find "$d" ! -type d
	expect_output ""
}
