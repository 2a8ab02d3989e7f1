#!/bin/bash
# scripts/bench-peers.sh - mq against the brokers users would pick instead, on
# the same workloads in the same run (make bench PEERS=1 runs it; it also
# runs alone): Redis Streams, NATS JetStream, beanstalkd, SQLite in WAL mode.
#
# Environment:
#   BENCH_PEERS_N=min(BENCH_N,200000)  messages of 100 bytes (99 + "\n");
#                       the slowest peers take minutes for more
#   BENCH_PEERS_FSYNC_N=1000  messages for a peer that fsyncs each message
#                       (beanstalkd -f0): a few ms an fsync here
#   BENCH_PEERS_ONE=100 one-shot sends: one process per message
#   BENCH_PEERS_LAT=300 messages timed for end-to-end latency, 200 a second
#   BENCH_REPS=3        runs per row, the median is kept
#   BENCH_PEERS_INSTALL=1  apt-get install what is missing (needs root)
#   MQ_BIN=DIR          mq-send, mq-recv, mq-topic (default: bin/)
#   TMPDIR              scratch space
#
# Each server listens on 127.0.0.1 on a free port with its data in a temp
# directory and is stopped by pid.  Clients: redis-cli --pipe for XADD
# (the RESP it reads is made beforehand, untimed), redis-cli for one-shot,
# the sqlite3 program for one-shot; otherwise scripts/bench-peers.py (plain
# sockets, pipelined; Debian packages no NATS or beanstalkd client) and, for
# one-shot NATS and beanstalkd, a bash /dev/tcp client in this script.
# Consumers write every message to a file that is compared with the input
# after each run.  The durability column says when a row's data is on
# stable storage: "unsynced" rows can lose acknowledged messages on power
# loss, and their ratio is taken against mq-send --no-sync; synced rows
# against durable mq-send.  "mq vs it" = its seconds / mq's seconds.
# Exit status: 1 if a run failed or a consumer printed other messages.

set -u
export LC_ALL=C

# --- one-shot clients: `bash bench-peers.sh --put nats|bs PORT [SUBJECT] MSG`
# run as a process of their own per message, like redis-cli or mq-send.
# nats: one message, waiting for the JetStream ack
nats_pub() { # PORT SUBJECT MSG
	local l ack
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	read -r l <&3 || return 1
	printf 'CONNECT {"verbose":false}\r\nSUB _i 1\r\nPUB %s _i %d\r\n%s\r\n' "$2" ${#3} "$3" >&3
	while read -r l <&3; do
		case $l in
		MSG*) read -r ack <&3; break;;
		-ERR*) echo "nats: $l" >&2; return 1;;
		esac
	done
	case ${ack:-} in *'"seq"'*) return 0;; *) echo "nats: ${ack:-no ack}" >&2; return 1;; esac
}
# beanstalkd: one put, waiting for INSERTED
bs_put() { # PORT MSG
	local l
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'put 0 0 600 %d\r\n%s\r\n' ${#2} "$2" >&3
	read -r l <&3
	case $l in INSERTED*) return 0;; *) echo "beanstalkd: $l" >&2; return 1;; esac
}
if [ "${1:-}" = --put ]; then
	case ${2:-} in
	nats) nats_pub "$3" "$4" "$5"; exit;;
	bs) bs_put "$3" "$4"; exit;;
	esac
	exit 64
fi
here=$(cd "$(dirname "$0")" && pwd)
self=$here/$(basename "$0")
bin=${MQ_BIN:-$here/../bin}
bin=$(cd "$bin" && pwd) || { echo "bench-peers: no $bin (run make)" >&2; exit 1; }
SEND=$bin/mq-send RECV=$bin/mq-recv TOPIC=$bin/mq-topic
PY=/usr/bin/python3
CL=$here/bench-peers.py
N0=${BENCH_N:-5000000}
[ "$N0" -gt 200000 ] 2>/dev/null && N0=200000
N=${BENCH_PEERS_N:-$N0}
FN=${BENCH_PEERS_FSYNC_N:-1000}
ONE=${BENCH_PEERS_ONE:-100}
LATN=${BENCH_PEERS_LAT:-300}
REPS=${BENCH_REPS:-3}
for v in "$N" "$FN" "$ONE" "$LATN" "$REPS"; do
	case $v in ''|*[!0-9]*|0) echo "bench-peers: sizes must be numbers >= 1" >&2; exit 1;; esac
done
[ "$FN" -gt "$N" ] && FN=$N

# --- install (Debian packages) ----------------------------------------------
need=
command -v redis-server >/dev/null || need="$need redis-server"
command -v redis-cli >/dev/null || need="$need redis-tools"
command -v nats-server >/dev/null || need="$need nats-server"
command -v beanstalkd >/dev/null || need="$need beanstalkd"
command -v sqlite3 >/dev/null || need="$need sqlite3"
if [ -n "$need" ] && [ "${BENCH_PEERS_INSTALL:-1}" = 1 ]; then
	echo "bench-peers: apt-get install$need" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "bench-peers: not root: install$need by hand" >&2
	else
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y --no-install-recommends $need >/dev/null 2>&1 ||
		    { apt-get update >/dev/null 2>&1 &&
		      apt-get install -y --no-install-recommends $need >/dev/null 2>&1; } ||
		    echo "bench-peers: apt-get install$need failed" >&2
	fi
fi
[ -x "$PY" ] || { echo "bench-peers: $PY missing" >&2; exit 1; }

d=$(mktemp -d "${TMPDIR:-/tmp}/mq-bpeers.XXXXXX") || exit 1
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	rm -rf "$d"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cd "$d" || exit 1
export MQ_SPOOL=$d/spool
unset MQ_IO
failed=0
fail() { echo "bench-peers: FAIL: $*" >&2; failed=1; }
now() { REPLY=$EPOCHREALTIME; }

# input: the lines scripts/bench.sh sends
mkin() { # COUNT FILE
	awk -v n="$1" 'BEGIN {
		pad = "mq-bench payload 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ "
		while (length(pad) < 90) pad = pad "."
		pad = substr(pad, 1, 90)
		for (i = 0; i < n; i++) printf "%s%09d\n", pad, i
	}' > "$2"
}
mkin "$N" in
mkin "$FN" fin
MSG=$(head -n 1 in)

# start NAME CMD...: run a server in the background, remember its pid
start() {
	local name=$1
	shift
	"$@" > "$d/$name.log" 2>&1 &
	pids+=($!)
	eval "${name}_pid=$!"
}
stop() { # NAME
	local p
	eval "p=\${${1}_pid:-}"
	[ -n "$p" ] || return
	kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
	eval "${1}_pid="
}
port() { "$PY" "$CL" port free; }
waitport() { "$PY" "$CL" port wait "$1" || { fail "$2 did not start: $(tail -3 "$d/$2.log")"; return 1; }; }

# --- measurement ----------------------------------------------------------
# measure NAME WORKLOAD COUNT DURABILITY VS PRE CMD POST
#   VS names the mq row of the same workload the ratio is taken against
#   (empty for mq's own rows); PRE and POST run untimed around CMD.
rows=()
declare -A secs_of count
measure() {
	local name=$1 wl=$2 n=$3 dur=$4 vs=$5 pre=$6 cmd=$7 post=$8 b="" ok=1 rep t0 t1 ts=()
	for ((rep = 1; rep <= REPS; rep++)); do
		eval "$pre" || { fail "$name: setup failed"; ok=0; break; }
		sync
		now; t0=$REPLY
		if ! eval "$cmd"; then
			fail "$name (rep $rep): command failed: $cmd"
			ok=0
		fi
		now; t1=$REPLY
		eval "$post" || { fail "$name (rep $rep): check failed"; ok=0; }
		ts+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.6f", b-a}')")
		[ $ok = 1 ] || break
	done
	# the median run (of an even number, the faster middle one)
	b=$(printf '%s\n' "${ts[@]}" | sort -g | sed -n "$(((${#ts[@]} + 1) / 2))p")
	[ $ok = 1 ] || b=FAILED
	rows+=("$wl|$name|$n|$dur|$vs")
	secs_of[$name]=$b count[$name]=$n
	printf '  %-44s %s\n' "$name" "$b" >&2
}
same() { # FILE EXPECTED: what a consumer printed is the input
	cmp -s "$1" "$2" || { fail "output differs from the input: $(cmp "$1" "$2" 2>&1 | head -1)"; return 1; }
}
oneshot() { # CMD-WITH-$m: ONE processes, one message each
	local i m
	for ((i = 0; i < ONE; i++)); do
		m="$MSG"
		eval "$1" || return 1
	done
}

# latency NAME DURABILITY KIND ARGS...: end-to-end p50 and p99 (one run):
# a consumer waiting (mq-recv -f, XREAD BLOCK, a push consumer, reserve)
# and LATN messages sent one at a time, 200 a second, each stamped
lats=()
latency() {
	local name=$1 dur=$2 r
	shift 2
	if r=$("$PY" "$CL" latency run "$1" "$LATN" 200 "${@:2}"); then
		lats+=("$name|$r|$dur")
	else
		fail "latency $name"
		lats+=("$name|FAILED|$dur")
	fi
	printf '  %-44s %s us\n' "latency: $name" "$r" >&2
}

echo "running peers (seconds, the median per line) ..." >&2

# --- mq -------------------------------------------------------------------
have_topic() { "$TOPIC" describe "$1" >/dev/null 2>&1; }
drop_topic() { if have_topic "$1"; then "$TOPIC" delete "$1" || fail "mq-topic delete $1"; fi; }
measure 'mq-send (durable)' produce "$N" 'fsync before exit' '' \
	'drop_topic t2' '"$SEND" t2 < in' 'drop_topic t2'
measure 'mq-send --no-sync' produce "$N" 'unsynced' '' \
	'drop_topic t1' '"$SEND" --no-sync t1 < in' ''
measure 'mq-recv' consume "$N" '-' '' \
	'rm -f out' '"$RECV" t1 > out' 'same out in'
measure 'mq-recv -g (commits offsets)' consume "$N" '-' '' \
	'rm -rf spool/topics/t1/groups out' '"$RECV" -g bench t1 > out' 'same out in'
measure 'mq-send t msg (durable)' oneshot "$ONE" 'fsync before exit' '' \
	'drop_topic o2' 'oneshot "\"\$SEND\" o2 \"\$m\""' ''
measure 'mq-send --no-sync t msg' oneshot "$ONE" 'unsynced' '' \
	'drop_topic o1' 'oneshot "\"\$SEND\" --no-sync o1 \"\$m\""' ''
drop_topic t1
"$TOPIC" create l1 && "$TOPIC" create l2 || fail "mq-topic create l1 l2"
latency 'mq-send --no-sync -> mq-recv -f' unsynced mq "$SEND" "$RECV" l1 --no-sync
latency 'mq-send -> mq-recv -f' 'fsync before exit' mq "$SEND" "$RECV" l2
drop_topic l1
drop_topic l2

# --- Redis Streams --------------------------------------------------------
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
	rp=$(port)
	mkdir -p redis
	start redis redis-server --bind 127.0.0.1 --port "$rp" --dir "$d/redis" \
	    --save '' --appendonly yes --appendfsync always --protected-mode no \
	    --daemonize no
	if waitport "$rp" redis; then
		rc() { redis-cli -p "$rp" "$@"; }
		"$PY" "$CL" redis resp s < in > in.resp
		pipe() { # the whole input through redis-cli --pipe, all replies OK
			local r
			r=$(redis-cli -p "$rp" --pipe < in.resp 2>&1) || return 1
			case $r in *"errors: 0, replies: $N"*) ;; *) echo "$r" >&2; return 1;; esac
		}
		llen() { [ "$(rc XLEN "$1")" = "$2" ] || { fail "redis: XLEN $1 is $(rc XLEN "$1"), expected $2"; return 1; }; }
		measure 'redis XADD (appendfsync always)' produce "$N" 'fsync before reply (appendfsync always)' 'mq-send (durable)' \
			'rc CONFIG SET appendfsync always >/dev/null && rc DEL s >/dev/null' 'pipe' 'llen s "$N"'
		measure 'redis XADD (appendfsync everysec)' produce "$N" 'unsynced (appendfsync everysec)' 'mq-send --no-sync' \
			'rc CONFIG SET appendfsync everysec >/dev/null && rc DEL s >/dev/null' 'pipe' 'llen s "$N"'
		measure 'redis XREAD' consume "$N" '-' 'mq-recv' \
			'rm -f out' '"$PY" "$CL" redis consume "$rp" s "$N" > out' 'same out in'
		measure 'redis XREADGROUP + XACK' consume "$N" '-' 'mq-recv -g (commits offsets)' \
			'rm -f out; rc XGROUP DESTROY s g >/dev/null; rc XGROUP CREATE s g 0 >/dev/null' \
			'"$PY" "$CL" redis consume "$rp" s "$N" g > out' 'same out in'
		rc CONFIG SET appendfsync always >/dev/null
		measure 'redis-cli XADD (always)' oneshot "$ONE" 'fsync before reply (appendfsync always)' 'mq-send t msg (durable)' \
			'rc DEL o >/dev/null' 'oneshot "redis-cli -p \$rp XADD o \"*\" d \"\$m\" >/dev/null"' 'llen o "$ONE"'
		rc CONFIG SET appendfsync everysec >/dev/null
		measure 'redis-cli XADD (everysec)' oneshot "$ONE" 'unsynced (appendfsync everysec)' 'mq-send --no-sync t msg' \
			'rc DEL o >/dev/null' 'oneshot "redis-cli -p \$rp XADD o \"*\" d \"\$m\" >/dev/null"' 'llen o "$ONE"'
		rm -f in.resp
		rc CONFIG SET appendfsync always >/dev/null
		latency 'redis XADD -> XREAD BLOCK (always)' 'fsync before reply (appendfsync always)' redis "$rp"
		rc CONFIG SET appendfsync everysec >/dev/null
		latency 'redis XADD -> XREAD BLOCK (everysec)' 'unsynced (appendfsync everysec)' redis "$rp"
	fi
	stop redis
	rm -rf redis
else
	echo "bench-peers: redis-server or redis-cli missing: Redis skipped" >&2
fi

# --- NATS JetStream -------------------------------------------------------
if command -v nats-server >/dev/null; then
	np=$(port)
	start nats nats-server -a 127.0.0.1 -p "$np" -js -sd "$d/nats"
	if waitport "$np" nats; then
		ndur='unsynced (file store; nats-server 2.9 fsyncs on a timer, has no sync option)'
		measure 'nats JetStream publish (acked)' produce "$N" "$ndur" 'mq-send --no-sync' \
			'"$PY" "$CL" nats setup "$np" S' '"$PY" "$CL" nats produce "$np" S < in' ''
		measure 'nats pull consumer (ack none)' consume "$N" '-' 'mq-recv' \
			'rm -f out' '"$PY" "$CL" nats consume "$np" S "$N" none > out' 'same out in'
		measure 'nats pull consumer (ack all/batch)' consume "$N" '-' 'mq-recv -g (commits offsets)' \
			'rm -f out' '"$PY" "$CL" nats consume "$np" S "$N" all > out' 'same out in'
		measure 'nats publish one-shot (bash)' oneshot "$ONE" "$ndur" 'mq-send --no-sync t msg' \
			'"$PY" "$CL" nats setup "$np" O' 'oneshot "bash \"\$self\" --put nats \$np O.x \"\$m\""' ''
		latency 'nats publish -> push consumer' "$ndur" nats "$np"
	fi
	stop nats
	rm -rf nats
else
	echo "bench-peers: nats-server missing: NATS skipped" >&2
fi

# --- beanstalkd -----------------------------------------------------------
# Consuming deletes: each consume run takes the messages of one produce run
# (FIFO), so the consume rows run as often as the produce row ran.
if command -v beanstalkd >/dev/null; then
	for f in 0 50; do
		bp=$(port)
		mkdir -p bs
		start bs beanstalkd -l 127.0.0.1 -p "$bp" -b "$d/bs" -f "$f"
		waitport "$bp" bs || { stop bs; continue; }
		if [ $f = 0 ]; then
			n=$FN src=fin dur='fsync per put (-f0)' vs='mq-send (durable)' vs1='mq-send t msg (durable)' sfx="-f0, N=$FN"
		else
			n=$N src=in dur='unsynced (fsync every 50 ms: -f50, the default)' vs='mq-send --no-sync' vs1='mq-send --no-sync t msg' sfx='-f50'
		fi
		measure "beanstalkd put ($sfx)" produce "$n" "$dur" "$vs" \
			'' '"$PY" "$CL" bs produce "$bp" < $src' ''
		measure "beanstalkd reserve+delete ($sfx)" consume "$n" '-' 'mq-recv -g (commits offsets)' \
			'rm -f out' '"$PY" "$CL" bs consume "$bp" "$n" > out' 'same out $src'
		measure "beanstalkd put one-shot (bash, ${sfx%%,*})" oneshot "$ONE" "$dur" "$vs1" \
			'' 'oneshot "bash \"\$self\" --put bs \$bp \"\$m\""' ''
		latency "beanstalkd put -> reserve (${sfx%%,*})" "$dur" bs "$bp"
		stop bs
		rm -rf bs
	done
else
	echo "bench-peers: beanstalkd missing: beanstalkd skipped" >&2
fi

# --- SQLite (WAL) ---------------------------------------------------------
if command -v sqlite3 >/dev/null; then
	for sy in FULL NORMAL; do
		if [ $sy = FULL ]; then
			dur='fsync per transaction (synchronous=FULL)' vs='mq-send (durable)' vs1='mq-send t msg (durable)'
		else
			dur='unsynced (WAL synced at checkpoint: synchronous=NORMAL)' vs='mq-send --no-sync' vs1='mq-send --no-sync t msg'
		fi
		qcount() { [ "$("$PY" "$CL" sqlite count q.db)" = "$1" ] || { fail "sqlite: $("$PY" "$CL" sqlite count q.db) rows, expected $1"; return 1; }; }
		measure "sqlite INSERT x$((N < 10000 ? N : 10000))/txn ($sy)" produce "$N" "$dur" "$vs" \
			'rm -f q.db q.db-wal q.db-shm' '"$PY" "$CL" sqlite produce q.db $sy < in' 'qcount "$N"'
		if [ $sy = FULL ]; then
			measure 'sqlite SELECT' consume "$N" '-' 'mq-recv' \
				'rm -f out' '"$PY" "$CL" sqlite consume q.db $sy "$N" > out' 'same out in'
			measure 'sqlite SELECT + cursor row/batch' consume "$N" '-' 'mq-recv -g (commits offsets)' \
				'rm -f out' '"$PY" "$CL" sqlite consume q.db $sy "$N" g > out' 'same out in'
		fi
		measure "sqlite3 INSERT one-shot ($sy)" oneshot "$ONE" "$dur" "$vs1" \
			'rm -f q.db q.db-wal q.db-shm; "$PY" "$CL" sqlite init q.db' \
			'oneshot "sqlite3 q.db \"PRAGMA synchronous=$sy; INSERT INTO q (body) VALUES ('"'"'\$m'"'"');\""' \
			'qcount "$ONE"'
	done
	rm -f q.db q.db-wal q.db-shm
else
	echo "bench-peers: sqlite3 missing: SQLite skipped" >&2
fi

# --- table ----------------------------------------------------------------
echo
printf 'peers: %d messages x 100 bytes (fsync-per-message rows: %d), one-shot %d processes, median of %d\n' \
	"$N" "$FN" "$ONE" "$REPS"
printf '%-8s %-40s %9s %12s %9s  %s\n' workload benchmark seconds 'messages/s' 'mq vs it' durability
for r in "${rows[@]}"; do
	IFS='|' read -r wl name n dur vs <<< "$r"
	s=${secs_of[$name]}
	if [ "$s" = FAILED ]; then
		printf '%-8s %-40s %9s\n' "$wl" "$name" FAILED
		continue
	fi
	ratio=-
	if [ -n "$vs" ] && [ "${secs_of[$vs]:-FAILED}" != FAILED ]; then
		# per message, so rows of different counts compare
		ratio=$(awk -v s="$s" -v n="$n" -v m="${secs_of[$vs]}" -v mn="${count[$vs]}" \
		    'BEGIN{printf "%.2fx", (s / n) / (m / mn)}')
	fi
	awk -v wl="$wl" -v name="$name" -v s="$s" -v n="$n" -v r="$ratio" -v dur="$dur" 'BEGIN {
		if (s <= 0) s = 1e-6
		printf "%-8s %-40s %7.3f s %12.0f %9s  %s\n", wl, name, s, n / s, r, dur
	}'
done
echo
printf 'end-to-end latency: %d messages, 200 a second, one at a time (SQLite: none, a consumer would poll)\n' "$LATN"
printf '%-44s %9s %9s  %s\n' benchmark 'p50 us' 'p99 us' durability
for r in "${lats[@]}"; do
	IFS='|' read -r name pp dur <<< "$r"
	read -r p50 p99 <<< "$pp"
	printf '%-44s %9s %9s  %s\n' "$name" "$p50" "${p99:-}" "$dur"
done
[ $failed = 0 ]
