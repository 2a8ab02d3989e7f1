#!/usr/bin/env bats
# contrib/: the example systemd units are valid units

load helpers

@test "contrib: systemd-analyze verify accepts the example units" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	local d="$BATS_TEST_TMPDIR/units" f
	mkdir -p "$d"
	for f in "$MQ_REPO"/contrib/*.service "$MQ_REPO"/contrib/*.timer; do
		# the programs where this build has them
		sed "s|/usr/local/bin/|$MQ_BINDIR/|g" "$f" >"$d/${f##*/}"
	done
	ln -s mq-worker@.service "$d/mq-worker@jobs.service"
	run env SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no \
	    "$d/mq-worker@jobs.service" "$d/mq-gc.service" "$d/mq-gc.timer"
	expect_status 0
	expect_output ""
}
