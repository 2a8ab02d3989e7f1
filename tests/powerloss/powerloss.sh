#!/usr/bin/env bash
# powerloss.sh - simulated power failures: only what mq fsync'd survives
#
#   powerloss.sh [TRIALS]   (default $POWERLOSS_TRIALS, else 40)
#
# POWERLOSS_ONLY=NAME runs one scenario (sends, creates, delayed, compact).
#
# Each trial runs sends and topic creations under shim.so (MQ_IO=sync),
# kills them at a random moment, rebuilds the spool from what was fsync'd
# (rebuild.py) and checks, on that spool:
#   - every message whose mq-send exited 0 is there, exactly once;
#   - each topic's messages are in the order they were sent;
#   - nothing is there that was never sent;
#   - every topic whose creation exited 0 is there, whole;
#   - a scheduled message (--delay) whose send exited 0 is there once,
#     however its move into the partition was cut;
#   - a transaction (--prepare, then --commit) whose commit exited 0 is
#     there whole, once; any other is there whole or not at all, however
#     its commit was cut (the check's reader completes a cut one);
#   - after the next writer's recovery, mq-topic verify is clean;
#   - a compacted topic, gc'd between sends, keeps per key a message no
#     older than the last acked one, and verifies and compacts again.
# Prints one TAP line per scenario and exits non-zero on a violation.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bindir=${MQ_BINDIR:-$repo/bin}
trials=${1:-${POWERLOSS_TRIALS:-40}}
work=$(mktemp -d "${TMPDIR:-/tmp}/mq-powerloss.XXXXXX")
trap 'rm -rf "$work"' EXIT
shim=$work/shim.so
cc -shared -fPIC -O2 -o "$shim" "$here/shim.c" -ldl || exit 1
export PATH="$bindir:$PATH"
unset MQ_SPOOL

violations=0 checked=0 acked=0
fail() {
	echo "# trial $t: $*" | tee -a "$work/fails"
	violations=$((violations + 1))
}

# under_shim CMD...: run with the power-failure model on
under_shim() { LD_PRELOAD=$shim MQ_IO=sync MQ_SHADOW=$shadow "$@"; }

# sends: one-shot sends to a topic made beforehand with tiny segments (so
# they roll), and to topics made on the fly by mq-send itself
scenario_sends() {
	local i=0 topic
	while :; do
		case $((i % 3)) in
		0) topic=rolls ;;
		1) topic=auto$((i / 30)) ;;
		2) topic=keyed ;;
		esac
		echo "try $topic m$i" >> "$log"
		if under_shim mq-send -s "$spool" -k "k$((i % 4))" "$topic" "m$i" 2>/dev/null; then
			echo "ok $topic m$i"
		else
			echo "fail $topic m$i"
		fi >> "$log"
		i=$((i + 1))
	done
}

# delayed: scheduled sends (--delay 30ms) to the keyed topic, and every
# other turn a reader that moves the due ones into their partitions; the
# check's own mq-recv moves what is left, and each acked message must be
# there exactly once
scenario_delayed() {
	local i=0
	while :; do
		echo "try keyed m$i" >> "$log"
		if under_shim mq-send -s "$spool" -k "k$((i % 4))" --delay 30ms \
		    keyed "m$i" 2>/dev/null; then
			echo "ok keyed m$i"
		else
			echo "fail keyed m$i"
		fi >> "$log"
		if ((i % 2)); then
			under_shim mq-recv -s "$spool" keyed > /dev/null 2>&1
		fi
		i=$((i + 1))
	done
}

# txn: transactions of two messages with different keys (so, mostly, two
# partitions) to the keyed topic: prepared, then committed
scenario_txn() {
	local i=0 a b tx
	while :; do
		a=m$((2 * i)) b=m$((2 * i + 1))
		echo "try keyed $a" >> "$log"
		echo "try keyed $b" >> "$log"
		echo "pair keyed $a $b" >> "$log"
		if tx=$(printf 'k0:%s\nk1:%s\n' "$a" "$b" |
		    under_shim mq-send -s "$spool" --prepare -K : keyed 2>/dev/null) &&
		    under_shim mq-send -s "$spool" --commit "$tx" 2>/dev/null; then
			echo "ok keyed $a"
			echo "ok keyed $b"
		else
			echo "fail keyed $a $b"
		fi >> "$log"
		i=$((i + 1))
	done
}

# creates: topic creation, one after another
scenario_creates() {
	local i=0
	while :; do
		if under_shim mq-topic -s "$spool" create -P 3 "c$i" 2>/dev/null; then
			echo "created c$i"
		fi >> "$log"
		i=$((i + 1))
	done
}

# compact: keyed sends to a compacted topic and mq-topic gc compacting it,
# turn about; compaction may remove acked messages, but never the newest
# acked one of a key unless a newer message of the key is there
scenario_compact() {
	local i=0
	while :; do
		echo "ctry comp k$((i % 6)) m$i" >> "$log"
		if under_shim mq-send -s "$spool" -k "k$((i % 6))" comp "m$i" 2>/dev/null; then
			echo "cok comp k$((i % 6)) m$i" >> "$log"
		fi
		under_shim mq-topic -s "$spool" gc comp 2>/dev/null
		i=$((i + 1))
	done
}

# check_compact OUT: the compacted topic after the power failure
check_compact() {
	local out=$1 bad
	mq-recv -s "$out" -F '%k %s\n' comp > "$work/got" 2>"$work/err" ||
	    fail "comp: mq-recv exited $? ($(head -1 "$work/err"))"
	# the prefill (p*) and what was tried (m*); per key the newest there
	# is no older than the last acked one
	bad=$(awk 'BEGIN { last = -1 }
		FILENAME == ARGV[1] {
			if ($1 == "ctry") tried[$4] = 1
			if ($1 == "cok") acked[$3] = substr($4, 2) + 0
			next
		}
		{ n = ($2 ~ /^m/) ? substr($2, 2) + 0 : -1
		  if ($2 ~ /^m/ && !($2 in tried)) print "never sent: " $2
		  if ($2 in seen) print "twice: " $2
		  seen[$2] = 1
		  if (n <= last && n >= 0) print "out of order: " $2
		  if (n >= 0) last = n
		  newest[$1] = n }
		END { for (k in acked) if (!(k in newest) || newest[k] < acked[k])
			print k ": acked m" acked[k] " but newest there is " newest[k] }' \
	    "$log" "$work/got" | head -5)
	[ -z "$bad" ] || fail "comp: $bad"
	mq-send -s "$out" -q -k k0 comp probe || fail "comp: the next send failed"
	mq-topic -s "$out" verify comp > "$work/v" || fail "comp: verify: $(head -2 "$work/v")"
	mq-topic -s "$out" gc comp || fail "comp: the next gc failed"
	mq-topic -s "$out" verify comp > "$work/v" || fail "comp: verify after gc: $(head -2 "$work/v")"
}

check() {
	local out=$1 topic m a b n
	[ -d "$out/topics/comp" ] && check_compact "$out"
	# every acked message is there once, in order, and nothing else
	for topic in $(awk '$1 != "created" && $1 != "pair" && $1 != "ctry" && $1 != "cok" {print $2}' "$log" | sort -u); do
		grep -q "^$topic$" <(mq-topic -s "$out" list) || {
			if grep -q "^ok $topic " "$log"; then fail "$topic: gone, though sends to it exited 0"; fi
			continue
		}
		mq-recv -s "$out" -F '%p %s\n' "$topic" > "$work/got" 2>"$work/err" ||
		    fail "$topic: mq-recv exited $? ($(head -1 "$work/err"))"
		while read -r _ topic2 m; do
			[ "$topic2" = "$topic" ] || continue
			acked=$((acked + 1))
			grep -q " $m\$" "$work/got" || fail "$topic: $m acked but lost"
		done < <(grep "^ok $topic " "$log")
		awk '{print $2}' "$work/got" | sort | uniq -d | head -1 | grep -q . &&
		    fail "$topic: duplicates"
		# a transaction: whole or not at all
		while read -r _ _ a b; do
			n=$(grep -c -e " $a\$" -e " $b\$" "$work/got")
			[ "$n" = 0 ] || [ "$n" = 2 ] || fail "$topic: $a $b: $n of 2 visible"
		done < <(grep "^pair $topic " "$log")
		# per partition the sequence numbers grow
		awk '{ n = substr($2, 2) + 0; if (($1 in last) && n <= last[$1]) bad = 1; last[$1] = n }
		    END { exit bad }' "$work/got" || fail "$topic: out of order"
		while read -r _ m; do
			grep -q "^try $topic $m\$" "$log" || fail "$topic: $m was never sent"
		done < "$work/got"
		mq-send -s "$out" -q "$topic" probe || fail "$topic: the next send failed"
		mq-topic -s "$out" verify "$topic" > "$work/v" || fail "$topic: verify: $(head -2 "$work/v")"
	done
	while read -r _ c; do
		mq-topic -s "$out" describe "$c" > /dev/null 2>&1 || fail "topic $c created, then lost"
		mq-topic -s "$out" verify "$c" > /dev/null || fail "topic $c: verify"
	done < <(grep '^created ' "$log")
}

# gone PGID: no process of the group is alive (zombies are dead)
gone() {
	local p st
	for p in $(pgrep -g "$1"); do
		st=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)
		[ -n "$st" ] && [ "$st" != Z ] && return 1
	done
	return 0
}

run() {
	local name=$1 before=$violations n
	: > "$work/fails"
	for ((t = 1; t <= trials; t++)); do
		spool=$work/spool shadow=$work/shadow log=$work/log
		rm -rf "$spool" "$shadow" "$work/out"
		: > "$log"
		mq-topic -s "$spool" create --config segment.bytes=1024 rolls
		mq-topic -s "$spool" create -P 3 keyed
		if [ "$name" = compact ]; then
			mq-topic -s "$spool" create --config cleanup.policy=compact \
			    --config segment.bytes=1024 \
			    --config min.cleanable.dirty.ratio=0 comp
			for ((n = 0; n < 40; n++)); do
				mq-send -s "$spool" -k "k$((n % 6))" comp "p$n"
			done
		fi
		python3 "$here/rebuild.py" snapshot "$spool" "$shadow"
		"scenario_$name" &
		local pid=$!
		sleep "0.$((RANDOM % 5 + 1))$((RANDOM % 10))"
		# the power goes: the whole process group at once
		{
			kill -9 -- -"$pid" || kill -9 "$pid"
			wait "$pid"
		} 2>/dev/null
		# and nothing of it runs on: a killed process dies a moment
		# after kill(2) returns, and could still write to the shadow
		for ((n = 0; n < 300; n++)); do
			gone "$pid" && break
			sleep 0.01
		done
		python3 "$here/rebuild.py" rebuild "$shadow" "$work/out"
		local v0=$violations
		check "$work/out"
		# keep what failed, to look at: POWERLOSS_KEEP=DIR
		if [ $violations -ne $v0 ] && [ -n "${POWERLOSS_KEEP:-}" ]; then
			mkdir -p "$POWERLOSS_KEEP"
			cp -a "$work" "$POWERLOSS_KEEP/$name-$t"
		fi
		checked=$((checked + 1))
	done
	n=$((violations - before))
	if [ $n -eq 0 ]; then
		echo "ok - powerloss $name: $trials power failures, 0 violations"
	else
		echo "not ok - powerloss $name: $trials power failures, $n violations"
		# again after the TAP line, where make check's report shows them
		head -n 10 "$work/fails"
	fi
}

set -m	# each scenario in a process group of its own, killed whole
for s in sends creates delayed txn compact; do
	[ -z "${POWERLOSS_ONLY:-}" ] || [ "$POWERLOSS_ONLY" = "$s" ] && run "$s"
done
echo "# powerloss: $checked rebuilt spools checked, $acked acked messages looked for, $violations violations"
[ $violations -eq 0 ]
