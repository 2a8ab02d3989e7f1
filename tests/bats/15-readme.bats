#!/usr/bin/env bats
# the README's tour runs as pasted, in order, in a fresh spool

load helpers

# tour - the indented command lines of README.md's "A tour" section
tour() {
	awk '/^## A tour/ { on = 1; next }
	    /^## / { on = 0 }
	    on && /^    [^ ]/ { sub(/^    /, ""); print }' "$MQ_REPO/README.md"
}

@test "README: the tour has commands for every program" {
	run tour
	expect_status 0
	local p
	for p in mq-send mq-recv mq-topic; do
		expect_contains "$p "
	done
	((${#lines[@]} >= 25)) || { echo "only ${#lines[@]} lines" >&2; false; }
}

@test "README: every command of the tour runs as pasted, exit 0" {
	local dir="$BATS_TEST_TMPDIR/work"
	mkdir -p "$dir"
	cd "$dir"
	# stand-ins for the files and handlers the tour names
	head -c 3000 /dev/urandom >photo.png
	printf 'date,amount\n2026-11-25,42\n' >report.csv
	local h
	for h in handle send sms bill; do
		printf '#!/bin/sh\ncat >>%s.out\necho >>%s.out\n' "$h" "$h" >"$h.sh"
		chmod +x "$h.sh"
	done
	{
		# the default spool, ~/.local/state/mq, as the tour names it
		echo 'unset MQ_SPOOL XDG_STATE_HOME; set -e -o pipefail'
		echo 'echo $$ >tour.pid'
		# a command that fails says which, and when the tour ends,
		# however, the followers it left running go: its process group
		echo 'trap '"'"'echo "tour: line $LINENO: exit $?: $BASH_COMMAND" >&2'"'"' ERR'
		echo 'trap '"'"'trap "" TERM; kill -- -$$ 2>/dev/null'"'"' EXIT'
		# A person pasting the tour sees a program run before typing
		# the next line; a script does not.  After each command put in
		# the background, wait (5 s at most) until an mq-recv has
		# its SIGTERM handler: a worker killed before it has one dies of
		# the signal (143), and `wait %2` then fails.
		cat <<-'EOF'
		ready() {
			local i c m
			for ((i = 0; i < 100; i++)); do
				c=$(cat "/proc/$1/comm" 2>/dev/null) || return 0
				case $c in
				mq-recv)	m=$(awk '/^SigCgt/ { print $2 }' "/proc/$1/status") || return 0
					((0x$m & 0x4000)) && return 0 ;;
				bash|sh) ;;
				*)	return 0 ;;
				esac
				sleep 0.05
			done
		}
		EOF
		# Nor does a script give the workers the seconds a person
		# takes to type the next line: before the tour stops them
		# (kill %2 %3), and before it ends, wait (20 s at most) until
		# their handlers have written something, as a person would see
		# them do on a loaded machine.
		cat <<-'EOF'
		settle() {
			local i
			for ((i = 0; i < 400; i++)); do
				[[ -s $1 ]] && return 0
				sleep 0.05
			done
		}
		EOF
		tour | awk '/^kill %2 %3/ { print "settle handle.out" }
		    { print } /&[ \t]*(#.*)?$/ { print "ready $!" }'
		echo 'settle send.out; sleep 1'
	} >tour.sh
	# A session of its own, its output to a file, not to run's pipe: a
	# follower left running would hold that pipe open and run would wait
	# for ever (seen in CI when the tour failed before its end).  The
	# group is killed again afterwards, whatever happened.
	local st=0
	timeout -k 5 100 setsid bash tour.sh >tour.out 2>&1 || st=$?
	[[ -s tour.pid ]] && kill -- -"$(cat tour.pid)" 2>/dev/null || true
	if ((st != 0)); then
		echo "the tour exited $st; its output:" >&2
		tail -n 40 tour.out >&2
		echo "the script was:" >&2
		cat -n tour.sh >&2
	fi
	status=$st
	expect_status 0
	# and it did what it says
	[[ -s handle.out ]] || { echo "no worker handled a job" >&2; false; }
	[[ -s send.out ]] || { echo "the mail handler saw nothing" >&2; false; }
	unset MQ_SPOOL
	run mq-recv jobs.copy
	expect_eq "${#lines[@]}" 1000 "jobs.copy"
	run mq-topic config orders
	expect_contains "partitions=8"
	run jq -r .payload batch.jsonl
	expect_output "deploy 1.4"
	[[ -s mq.prom ]] || { echo "no mq.prom" >&2; false; }
	# the promoted standby holds what the primary had, and takes writes
	run mq-recv -s "$HOME/mq-standby" orders
	expect_contains '{"id":2}'
	run mq-send -s "$HOME/mq-standby" orders after
	expect_status 0
}
