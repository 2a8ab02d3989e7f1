#!/bin/bash
# scripts/bench-repl.sh - mq-replicate's figures (make bench runs it; it also
# runs alone): a first copy against cp -r + sync and rsync -a, locally and
# over ssh to 127.0.0.1; the bytes of an incremental run; mq-send
# --replicas 1 beside a plain durable send; --follow lag percentiles.
#
# Environment:
#   BENCH_REPL_MB=200   size of the spool copied (BENCH_REPL_MB=1000: 1 GB)
#   BENCH_REPS=1        runs of each copy; the median is kept
#   BENCH_LAG_N=20000   messages timed for the --follow lag
#   BENCH_LAG_RATE=10000 of them a second, steady (issue 9's load)
#   BENCH_SSH=0         leave out the rows over ssh
#   MQ_BIN=DIR          the programs (default: bin/)
#   TMPDIR              scratch space (about 5 x BENCH_REPL_MB)
#
# Every copy starts from the page cache with the destination absent, and
# ends when its data is on stable storage: cp -r and rsync are followed by
# sync, mq-replicate syncs what it writes.  Ratios are speed ratios
# (baseline seconds / mq-replicate seconds): 1.00x = as fast.  The ssh rows
# need root and /usr/sbin/sshd (an sshd of our own on a free port, as
# 86-replicate-ssh.bats starts it), and rsync rows need rsync; a row that
# cannot run says why instead.  Exit status: 1 if a copy failed or differs.

set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
bin=${MQ_BIN:-$here/../bin}
bin=$(cd "$bin" && pwd) || { echo "bench-repl: no $bin (run make)" >&2; exit 1; }
SEND=$bin/mq-send RECV=$bin/mq-recv REPL=$bin/mq-replicate
[ -x "$REPL" ] || { echo "bench-repl: $REPL missing (run make)" >&2; exit 1; }
MB=${BENCH_REPL_MB:-200}
REPS=${BENCH_REPS:-1}
LAGN=${BENCH_LAG_N:-20000}
RATE=${BENCH_LAG_RATE:-10000}
for v in "$MB" "$REPS" "$LAGN" "$RATE"; do
	case $v in ''|*[!0-9]*|0) echo "bench-repl: sizes must be numbers >= 1" >&2; exit 1;; esac
done

d=$(mktemp -d "${TMPDIR:-/tmp}/mq-brepl.XXXXXX") || exit 1
sshd_pid=
cleanup() {
	[ -n "$sshd_pid" ] && kill "$sshd_pid" 2>/dev/null
	rm -rf "$d"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
failed=0
fail() { echo "bench-repl: FAIL: $*" >&2; failed=1; }
now() { REPLY=$EPOCHREALTIME; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; }

# best NAME CMD...: run CMD REPS times after removing $d/dst and a sync,
# keep the median in best_s (of an even number, the faster middle one),
# as make bench does
best() {
	local name=$1 t0 t1 r ts=()
	shift
	best_s=
	for ((r = 0; r < REPS; r++)); do
		rm -rf "$d/dst"
		sync
		now; t0=$REPLY
		if ! "$@"; then
			fail "$name: $*"
			best_s=FAILED
			return
		fi
		now; t1=$REPLY
		ts+=("$(secs "$t0" "$t1")")
	done
	best_s=$(printf '%s\n' "${ts[@]}" | sort -g | sed -n "$(((${#ts[@]} + 1) / 2))p")
}
cp_sync() { cp -r "$d/src" "$d/dst" && sync; }
rsync_sync() { rsync -a "$@" && sync; }
row() { # LABEL SECONDS [BASELINE-SECONDS BASELINE-NAME]
	if [ "$2" = FAILED ]; then
		printf '%-34s  FAILED\n' "$1"
	elif [ $# -ge 4 ] && [ "$3" != FAILED ]; then
		awk -v l="$1" -v s="$2" -v b="$3" -v n="$4" -v mb="$MB" 'BEGIN {
			printf "%-34s %7.2f s %7.0f MB/s   %.2fx %s\n", l, s, mb / s, b / s, n }'
	else
		awk -v l="$1" -v s="$2" -v mb="$MB" 'BEGIN {
			printf "%-34s %7.2f s %7.0f MB/s\n", l, s, mb / s }'
	fi
}
same() { # the replica's log files are the source's, byte for byte
	local f
	for f in "$d"/src/topics/*/[0-9]*/*.log; do
		cmp -s "$f" "$1/${f#"$d"/src/}" || { fail "$1: ${f#"$d"/src/} differs"; return 1; }
	done
}

# --- the spool: MB megabytes of 100-byte messages, two topics ------------
msgs=$((MB * 10000))
awk -v n="$msgs" 'BEGIN {
	pad = "mq-bench payload 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ ........."
	for (i = 0; i < n; i++) printf "%s%09d\n", substr(pad, 1, 90), i
}' | "$SEND" -s "$d/src" --no-sync big || { echo "bench-repl: mq-send failed" >&2; exit 1; }
seq 100000 | "$SEND" -s "$d/src" --no-sync small || exit 1
size=$(du -sm "$d/src" | cut -f1)
printf 'mq-replicate: a spool of %d messages, %d MB on disk, median of %d\n' \
    "$msgs" "$size" "$REPS"

# --- first copy, local ------------------------------------------------------
best 'cp -r' cp_sync; cp_s=$best_s
row "cp -r + sync" "$cp_s"
best 'mq-replicate' "$REPL" "$d/src" "$d/dst"; mq_s=$best_s
same "$d/dst"
row "mq-replicate first copy" "$mq_s" "$cp_s" "cp -r + sync"
if command -v rsync >/dev/null 2>&1; then
	best 'rsync -a' rsync_sync "$d/src/" "$d/dst"; rs_s=$best_s
	row "rsync -a + sync" "$rs_s"
	row "mq-replicate first copy" "$mq_s" "$rs_s" "rsync -a + sync"
else
	printf '%-34s  skipped: rsync not installed\n' "rsync -a + sync"
	rs_s=FAILED
fi

# --- first copy over ssh to 127.0.0.1 -------------------------------------
SSH=
if [ "${BENCH_SSH:-1}" = 0 ]; then
	:
elif [ "$(id -u)" = 0 ] && [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null; then
	k=$d/ssh
	mkdir "$k"
	ssh-keygen -q -t ed25519 -N '' -f "$k/host" </dev/null
	ssh-keygen -q -t ed25519 -N '' -f "$k/client" </dev/null
	cp "$k/client.pub" "$k/authorized_keys"
	mkdir -p /run/sshd
	for ((i = 0; i < 10; i++)); do
		[ -n "$SSH" ] && break
		port=$((20000 + RANDOM % 40000))
		printf '%s\n' "Port $port" "ListenAddress 127.0.0.1" \
		    "HostKey $k/host" "AuthorizedKeysFile $k/authorized_keys" \
		    "StrictModes no" "PermitRootLogin yes" \
		    "PasswordAuthentication no" "UsePAM no" \
		    "PidFile $k/sshd.pid" >"$k/config"
		/usr/sbin/sshd -D -e -f "$k/config" 2>>"$k/log" &
		sshd_pid=$!
		try="ssh -p $port -i $k/client -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
		for ((j = 0; j < 50; j++)); do
			if $try 127.0.0.1 true </dev/null 2>/dev/null; then
				SSH=$try
				break
			fi
			sleep 0.1
		done
		if [ -z "$SSH" ]; then
			kill "$sshd_pid" 2>/dev/null
			wait "$sshd_pid" 2>/dev/null
			sshd_pid=
		fi
	done
fi
if [ -n "$SSH" ]; then
	best 'mq-replicate over ssh' "$REPL" -e "$SSH" --remote-path "$REPL" \
	    "$d/src" "127.0.0.1:$d/dst"; mqs_s=$best_s
	same "$d/dst"
	if command -v rsync >/dev/null 2>&1; then
		best 'rsync -a over ssh' rsync_sync -e "$SSH" "$d/src/" \
		    "127.0.0.1:$d/dst"; rss_s=$best_s
		row "rsync -a over ssh + sync" "$rss_s"
		row "mq-replicate over ssh" "$mqs_s" "$rss_s" "rsync -a over ssh + sync"
	else
		row "mq-replicate over ssh" "$mqs_s"
		printf '%-34s  skipped: rsync not installed\n' "rsync -a over ssh"
	fi
else
	printf '%-34s  skipped: %s\n' "over ssh to 127.0.0.1" \
	    "$([ "${BENCH_SSH:-1}" = 0 ] && echo BENCH_SSH=0 || echo 'needs root, /usr/sbin/sshd and ssh')"
fi

# --- an incremental run after 1 MB: bytes through the pipe ----------------
rm -rf "$d/dst"
"$REPL" "$d/src" "$d/dst" || fail "mq-replicate (before the increment)"
printf '#!/bin/sh\nshift\nsh -c "$*" | tee -a "$MQ_COUNT"\n' >"$d/pipe"
chmod +x "$d/pipe"
seq 10000 | awk '{ printf "%099d\n", $1 }' | "$SEND" -s "$d/src" --no-sync big ||
    fail "mq-send 1 MB"
: >"$d/count"
now; t0=$REPLY
MQ_COUNT=$d/count "$REPL" -e "$d/pipe" --remote-path "$REPL" "host:$d/src" \
    "$d/dst" || fail "mq-replicate (incremental)"
now; t1=$REPLY
same "$d/dst"
awk -v s="$(secs "$t0" "$t1")" -v m="$(wc -c <"$d/count")" 'BEGIN {
	printf "%-34s %7.2f s   %d bytes through the pipe for 1000000 appended (%.3fx + %d)\n",
	    "mq-replicate after +1 MB", s, m, m / 1000000, m - 1000000 }'
# the same over ssh, beside what ssh alone costs: an incremental run
# should cost about that, whatever the spool's size
if [ -n "$SSH" ]; then
	seq 10000 | awk '{ printf "%099d\n", $1 }' | "$SEND" -s "$d/src" --no-sync big ||
	    fail "mq-send 1 MB"
	now; t0=$REPLY
	$SSH 127.0.0.1 true </dev/null || fail "ssh true"
	now; t1=$REPLY
	"$REPL" -e "$SSH" --remote-path "$REPL" "$d/src" "127.0.0.1:$d/dst" ||
	    fail "mq-replicate over ssh (incremental)"
	now; t2=$REPLY
	same "$d/dst"
	awk -v a="$(secs "$t0" "$t1")" -v b="$(secs "$t1" "$t2")" -v mb="$size" 'BEGIN {
		printf "%-34s %7.2f s\n", "ssh 127.0.0.1 true", a
		printf "%-34s %7.2f s   a %d MB spool; %.2f s beyond ssh itself\n",
		    "mq-replicate +1 MB over ssh", b, mb, b - a }'
fi

# --- --replicas 1, and the lag of --follow -----------------------------------
"$REPL" --follow "$d/src" "$d/dst" 2>/dev/null &
fpid=$!
"$SEND" -s "$d/src" --replicas 1 --timeout 10s lat warm || fail "--replicas 1"
now; t0=$REPLY
for ((i = 0; i < 20; i++)); do "$SEND" -s "$d/src" lat "m$i" || fail "mq-send lat"; done
now; t1=$REPLY
for ((i = 0; i < 20; i++)); do
	"$SEND" -s "$d/src" --replicas 1 --timeout 10s lat "r$i" || fail "mq-send --replicas 1"
done
now; t2=$REPLY
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
	printf "%-34s %7.2f ms a send\n", "mq-send (durable), one message", (b - a) * 50
	printf "%-34s %7.2f ms a send\n", "mq-send --replicas 1 (follower)", (c - b) * 50 }'
# LAGN messages at RATE a second, steady, written one line at a time
# into one streaming mq-send --no-sync on the source (a producer, not a
# process a message: fork and exec alone cost milliseconds); a follower
# of the replica reads each back; lag = seen on the replica - written
# into mq-send, both on this machine's monotonic clock
python3 - "$SEND" "$RECV" "$d/src" "$d/dst" "$LAGN" "$RATE" <<'EOF' || fail "follow lag"
import os, subprocess, sys, threading, time
send, recv, src, dst, n, rate = sys.argv[1:5] + [int(sys.argv[5]), int(sys.argv[6])]
lags = []
done = threading.Event()
f = subprocess.Popen([recv, "-s", dst, "-f", "--wait-topic", "lag2"],
    stdout=subprocess.PIPE)
def reader():
    for line in f.stdout:
        now = time.monotonic_ns()
        w = line.split()
        if len(w) == 3:
            lags.append((now - int(w[1])) / 1e6)
            if len(lags) >= n:
                break
    done.set()
threading.Thread(target=reader, daemon=True).start()
p = subprocess.Popen([send, "-s", src, "--no-sync", "lag2"],
    stdin=subprocess.PIPE, bufsize=0)
pad = b"x" * 80
p.stdin.write(b"warm\n")
time.sleep(1)
start = time.monotonic()
for i in range(n):
    due = start + i / rate
    d = due - time.monotonic()
    if d > 0.0005:
        time.sleep(d)
    p.stdin.write(b"%d %d %s\n" % (i, time.monotonic_ns(), pad))
done.wait(30)
p.stdin.close()
p.wait()
f.kill()
if len(lags) < n:
    print("follow lag: only %d of %d messages arrived" % (len(lags), n))
    sys.exit(1)
lags.sort()
pct = lambda q: lags[min(len(lags) - 1, int(q / 100 * len(lags)))]
print("%-34s %7.2f ms p50 %7.2f ms p99 %7.2f ms max  (%d messages at %d/s into one mq-send --no-sync)"
      % ("--follow lag, send to replica", pct(50), pct(99), lags[-1], n, rate))
EOF
kill "$fpid" 2>/dev/null
wait "$fpid" 2>/dev/null
exit $failed
