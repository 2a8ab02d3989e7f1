# helpers.bash - shared setup for the mq CLI suites (bats-core >= 1.5)
#
#	load helpers
#
# The binaries come from $MQ_BINDIR, default <repo>/bin.  Every test gets a
# fresh spool in $MQ_SPOOL and a private $HOME, so nothing outside
# $BATS_TEST_TMPDIR is ever written.

bats_require_minimum_version 1.5.0

# a hung program must not hang the suite (bats >= 1.7 honours this)
: "${BATS_TEST_TIMEOUT:=120}"

MQ_REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
MQ_BINDIR="${MQ_BINDIR:-$MQ_REPO/bin}"
case $MQ_BINDIR in /*) ;; *) MQ_BINDIR="$PWD/$MQ_BINDIR" ;; esac
PATH="$MQ_BINDIR:$PATH"
export PATH MQ_BINDIR MQ_REPO
MQ_TOOLS="$MQ_REPO/tests/tools"
SEGTOOL="$MQ_TOOLS/segtool.py"

# Called by the default setup; a file that needs its own setup() calls it.
mq_setup() {
	export MQ_SPOOL="$BATS_TEST_TMPDIR/spool"
	export HOME="$BATS_TEST_TMPDIR/home"
	unset XDG_STATE_HOME
	mkdir -p "$HOME"
	export LC_ALL=C
	MQ_BG_PIDS=()
	declare -gA MQ_BG_ERR=()
	# no test may ever wait on the terminal
	exec </dev/null
	local b
	for b in mq-send mq-recv mq-topic; do
		if [[ ! -x $MQ_BINDIR/$b ]]; then
			echo "# $MQ_BINDIR/$b: not built (set MQ_BINDIR or run make)" >&2
			return 1
		fi
	done
}

mq_teardown() {
	local p
	for p in "${MQ_BG_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${MQ_BG_PIDS[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	MQ_BG_PIDS=()
}

setup() { mq_setup; }
teardown() { mq_teardown; }

# bg OUT ERR CMD...: start CMD in the background, stdout to OUT, stderr to
# ERR; sets BG_PID and remembers it for teardown.  fd 3 is closed so bats
# does not wait for it.
bg() {
	local out=$1 err=$2
	shift 2
	"$@" >"$out" 2>"$err" 3>&- </dev/null &
	BG_PID=$!
	MQ_BG_PIDS+=("$BG_PID")
	MQ_BG_ERR[$BG_PID]=$err
}

# _bg_report PID: show a background job's stderr (bats prints it on failure)
_bg_report() {
	local err=${MQ_BG_ERR[$1]-}
	if [[ -n $err && -s $err ]]; then
		echo "--- stderr of background job $1 (status $BG_STATUS) ---" >&2
		head -c 4000 "$err" >&2
	fi
}

# stop_bg PID [SIGNAL]: signal a background job and set BG_STATUS
stop_bg() {
	local pid=$1 sig=${2:-TERM}
	kill -"$sig" "$pid" 2>/dev/null || true
	BG_STATUS=0
	wait "$pid" || BG_STATUS=$?
	_bg_report "$pid"
}

# wait_bg PID SECONDS: wait for a background job to end by itself, at most
# SECONDS; sets BG_STATUS (124 when it had to be killed)
wait_bg() {
	local pid=$1 limit=$2 i
	for ((i = 0; i < limit * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null || true
		BG_STATUS=124
		_bg_report "$pid"
		return 0
	fi
	BG_STATUS=0
	wait "$pid" || BG_STATUS=$?
	_bg_report "$pid"
}

# wait_until SECONDS CMD...: poll CMD every 50 ms until it succeeds
wait_until() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 20; i++)); do
		"$@" && return 0
		sleep 0.05
	done
	"$@" && return 0
	echo "wait_until: gave up after ${limit}s: $*" >&2
	return 1
}

# proc_state PID: what a process and its threads are doing (state, the
# kernel function they sleep in, the system call they are in), for the
# failure message of a test whose process did not do something in time
proc_state() {
	local t
	for t in /proc/"$1"/task/*; do
		echo "task ${t##*/}: $(cut -d' ' -f3 "$t/stat" 2>/dev/null)" \
		    "wchan $(cat "$t/wchan" 2>/dev/null)" \
		    "syscall $(cut -d' ' -f1-3 "$t/syscall" 2>/dev/null)"
	done
}

# lines_in FILE N: FILE has at least N lines
lines_in() {
	[[ -f $1 ]] && (($(wc -l <"$1") >= $2))
}

# ---- assertions: each prints what it saw before failing -------------

_mq_dump() {
	{
		echo "command: ${BATS_RUN_COMMAND:-?}"
		echo "status:  ${status:-?}"
		echo "--- output ---"
		printf '%s\n' "${output-}"
		if [[ -n ${stderr+set} ]]; then
			echo "--- stderr ---"
			printf '%s\n' "$stderr"
		fi
		echo "--------------"
	} >&2
}

# expect_status N: $status is N
expect_status() {
	if [[ "${status-}" != "$1" ]]; then
		echo "expected exit status $1, got ${status-unset}" >&2
		_mq_dump
		return 1
	fi
}

# expect_output STR: $output is exactly STR
expect_output() {
	if [[ "$output" != "$1" ]]; then
		echo "expected output:" >&2
		printf '%s\n' "$1" >&2
		_mq_dump
		return 1
	fi
}

# expect_contains STR [VAR]: STR occurs in $output (or in $stderr if VAR=stderr)
expect_contains() {
	local hay=${output-}
	[[ ${2-} == stderr ]] && hay=${stderr-}
	if [[ "$hay" != *"$1"* ]]; then
		echo "expected ${2:-output} to contain: $1" >&2
		_mq_dump
		return 1
	fi
}

# expect_not_contains STR [VAR]
expect_not_contains() {
	local hay=${output-}
	[[ ${2-} == stderr ]] && hay=${stderr-}
	if [[ "$hay" == *"$1"* ]]; then
		echo "expected ${2:-output} NOT to contain: $1" >&2
		_mq_dump
		return 1
	fi
}

# expect_eq GOT WANT [WHAT]
expect_eq() {
	if [[ "$1" != "$2" ]]; then
		echo "${3:-value}: got '$1', want '$2'" >&2
		return 1
	fi
}

# expect_same_file GOT WANT: byte-identical files, with a hint when not
expect_same_file() {
	if ! cmp "$1" "$2" >&2; then
		echo "sizes: $(wc -c <"$1") vs $(wc -c <"$2")" >&2
		return 1
	fi
}

# expect_reads_whole WANT CMD...: CMD (a reader, wrapped or not) exits 0,
# prints exactly the file WANT and writes nothing to stderr (a reader
# that misreads a batch reads it again, and says so there)
expect_reads_whole() {
	local want=$1 out=$BATS_TEST_TMPDIR/reads_whole st=0
	shift
	"$@" >"$out" 2>"$out.err" || st=$?
	expect_eq "$st" 0 "exit status of $*"
	expect_same_file "$out" "$want"
	expect_eq "$(cat "$out.err")" "" "stderr of $*"
}

# expect_missing PATH
expect_missing() {
	if [[ -e $1 || -L $1 ]]; then
		echo "expected $1 not to exist" >&2
		ls -la "$1" >&2
		return 1
	fi
}

# send_batches N TOPIC [MQ-SEND-OPTION...]: stdin's lines, N to a batch,
# by one mq-send: the same batches as a mq-send for every N lines,
# without starting hundreds of processes (under ASan a start and its
# leak check cost 0.2 s).  N lines are written at once, in one write
# (N lines must be under PIPE_BUF, 4096 bytes, together), and the next
# N only once mq-send has printed the offsets of these (--print-offsets),
# so it never holds more; --sync-interval 1ms syncs each batch as a send
# of its own would.  Fails as mq-send does.
send_batches() {
	local n=$1 topic=$2 line chunk k off in out pid st=0
	shift 2
	coproc SEND_BATCHES { mq-send "$@" --sync-interval 1ms --print-offsets "$topic" 3>&-; }
	in=${SEND_BATCHES[1]} out=${SEND_BATCHES[0]} pid=$SEND_BATCHES_PID
	while ((st == 0)); do
		chunk= k=0
		while ((k < n)) && IFS= read -r line; do
			chunk+=$line$'\n' k=$((k + 1))
		done
		((k > 0)) || break
		printf '%s' "$chunk" >&"$in" || { st=1; break; }
		# mq-send's last word, should it fail, is on stderr
		for ((; k > 0; k--)); do
			read -r -t 60 off <&"$out" || { st=1; break; }
		done
	done
	exec {in}>&-
	wait "$pid" || return
	exec {out}<&- 2>/dev/null
	return "$st"
}

# send_each TOPIC [MQ-SEND-OPTION...]: the JSON lines on stdin (as for
# mq-send -J), each in a batch of its own (send_batches)
send_each() {
	local topic=$1
	shift
	send_batches 1 "$topic" -J "$@"
}

# ---- spool and segment helpers ----------------------------------------

# partdir TOPIC [PART]
partdir() {
	echo "$MQ_SPOOL/topics/$1/${2:-0}"
}

# segments TOPIC [PART]: the .log files of a partition, in offset order
segments() {
	local f
	for f in "$(partdir "$1" "${2:-0}")"/*.log; do
		[[ -e $f ]] && echo "$f"
	done
}

# seg TOPIC [PART]: the first (oldest) segment of a partition
seg() {
	local s
	s=$(segments "$1" "${2:-0}" | head -n 1)
	if [[ -z $s ]]; then
		echo "seg: no segment in $(partdir "$1" "${2:-0}")" >&2
		return 1
	fi
	echo "$s"
}

# last_seg TOPIC [PART]
last_seg() {
	local s
	s=$(segments "$1" "${2:-0}" | tail -n 1)
	[[ -n $s ]] || return 1
	echo "$s"
}

fsize() {
	stat -c %s "$1"
}

# find_bytes FILE STRING [N]: byte offset of the Nth (1-based) occurrence
find_bytes() {
	python3 "$SEGTOOL" find "$1" "$2" "${3:-1}"
}

# flip_byte FILE OFFSET: invert every bit of one byte, in place
flip_byte() {
	python3 "$SEGTOOL" flip "$1" "$2"
}

# cut_bytes FILE N: remove the last N bytes
cut_bytes() {
	local size
	size=$(fsize "$1")
	truncate -s $((size - $2)) "$1"
}

# batches FILE: "POS BASE COUNT BODYLEN CODEC TYPE STATE" per batch
batches() {
	python3 "$SEGTOOL" batches "$1"
}

# batch_pos FILE N: byte position of the Nth (1-based) batch header
batch_pos() {
	python3 "$SEGTOOL" batches "$1" | awk -v n="$2" 'NR == n { print $1; found = 1 } END { exit !found }'
}

# now_ms: wall clock in ms since the epoch
now_ms() {
	date +%s%3N
}

# iso_ms MS [TZ-OFFSET-MINUTES]: ISO 8601 with milliseconds for an epoch-ms time
iso_ms() {
	python3 - "$1" "${2:-0}" <<'EOF'
import sys, datetime
ms, off = int(sys.argv[1]), int(sys.argv[2])
tz = datetime.timezone(datetime.timedelta(minutes=off))
t = datetime.datetime.fromtimestamp(ms / 1000, tz).replace(microsecond=(ms % 1000) * 1000)
s = t.strftime('%Y-%m-%dT%H:%M:%S.') + '%03d' % (ms % 1000)
s += 'Z' if off == 0 else t.strftime('%z')[:3] + ':' + t.strftime('%z')[3:]
print(s)
EOF
}

# need_strace: skip without strace; LeakSanitizer cannot run under ptrace,
# so an ASan build traced by strace runs without leak checking
need_strace() {
	command -v strace >/dev/null || skip "strace not installed"
	strace -f -qq -o /dev/null true 2>/dev/null || skip "strace cannot trace here"
	export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
}
