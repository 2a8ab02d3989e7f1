#!/usr/bin/env bash
# crash.sh - crash-test harness for mq: kill writers, readers and admin
# commands with SIGKILL at random moments, then check the invariants that
# mq(7) and mq-spool(5) promise.
#
#   tests/crash/crash.sh [-kv] [-n trials] [-s scenario,...] [--seed N]
#                        [--trial I] [-l]
#
#   -n N        trials in all, spread evenly (round robin) over the
#               scenarios (default $CRASH_TRIALS, else 1000)
#   -s LIST     only these scenarios (comma separated; -l lists them)
#   --seed N    seed of the random choices (default: from the clock; it
#               is printed, so that a run's choices can be replayed)
#   --trial I   run only trial I of the run (with the same -n, -s and
#               --seed as the run that found something)
#   -k          keep every trial's directory, not only the failed ones
#   -v          say what each trial did
#   -l          list the scenarios and exit
#
# Environment: MQ_BINDIR (default <repo>/bin) chooses the binaries; they
# are copied into the run directory at the start, so a concurrent `make`
# does not change them under a run.  TMPDIR (default /tmp) holds the run
# directory ${TMPDIR}/mq-crash.XXXXXX; each trial gets a fresh spool in
# it.  CRASH_TRIAL_TIMEOUT (default 60 s) bounds one trial: a trial that
# takes longer is killed and counts as a violation (a hang).
#
# Output: progress and violations as "# ..." lines, then one TAP line per
# scenario, "ok N - NAME: T trials, 0 violations" or "not ok N - ...",
# and a summary table (trials, violations, kills that landed on a live
# process, most duplicates seen).  Exit 0 when no invariant broke.  The
# directory of a trial that broke one is kept under RUN/failed/ with its
# spool, the logs and a file "violations".
#
# Adding a scenario: write a function scn_NAME that runs in a fresh trial
# directory $T with an empty spool $S (exported as MQ_SPOOL; nothing
# exists yet), uses the helpers below (rnd, pick_delay_us, usleep_us,
# gen_lines, dump_topic, check_* ...), calls `violation MSG` for every
# broken invariant and `record KEY N` for numbers worth summing up (dups,
# killed), and register it with `scenario NAME scn_NAME "description"`.
# Trials run one at a time; every process a trial starts carries
# CRASH_TAG in its environment and is killed when the trial ends.

set -u
export LC_ALL=C

CRASH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$CRASH_DIR/../.." && pwd)
MQ_BINDIR=${MQ_BINDIR:-$REPO/bin}
case $MQ_BINDIR in /*) ;; *) MQ_BINDIR=$PWD/$MQ_BINDIR ;; esac
CRASHTOOL=$CRASH_DIR/crashtool.py
CRASH_TRIAL_TIMEOUT=${CRASH_TRIAL_TIMEOUT:-60}

# ---- the scenario registry ------------------------------------------------

SCENARIOS=()
declare -A SCN_FUNC=() SCN_DESC=()

# scenario NAME FUNCTION DESCRIPTION
scenario() {
	SCENARIOS+=("$1")
	SCN_FUNC[$1]=$2
	SCN_DESC[$1]=$3
}

# ---- helpers for scenarios (they run inside the trial's subshell) ---------

# violation MSG: an invariant broke in this trial
violation() {
	printf '%s\n' "$*" >>"$T/violations"
	log "VIOLATION: $*"
}

# record KEY N: a number for the summary (dups: max is kept; others summed)
record() {
	echo "$1 $2" >>"$T/stats"
}

# log MSG: a line in the trial's log (shown with -v and for failed trials)
log() {
	printf '%s\n' "$*" >>"$T/trial.log"
}

# rnd N: a random number in 0..N-1 in $R (no subshell: keeps the sequence)
rnd() {
	R=$(((RANDOM << 15 | RANDOM) % $1))
}

# pick_delay_us FASTMAX_MS: a random kill delay in $R, in microseconds:
# one time in four uniform in 0-200 ms, else uniform in 0-FASTMAX_MS, so
# that operations that take a few milliseconds are hit in the middle
# often enough
pick_delay_us() {
	rnd 4
	if ((R == 0)); then
		rnd 200000
	else
		rnd $(($1 * 1000 + 1))
	fi
}

# usleep_us N: sleep N microseconds, without starting a process (sleep(1)
# alone costs a millisecond or more): a read with a timeout on fd 9, a
# FIFO that the trial holds open and nobody writes to
usleep_us() {
	local s _
	printf -v s '%d.%06d' $(($1 / 1000000)) $(($1 % 1000000))
	read -r -t "$s" -u 9 _
	return 0
}

# the programs: never through a shell function, so that $! of "$MQSEND
# ... &" is the pid of mq-send itself, not of a subshell running it
# (set by the driver, below)

# unblock FIFO: open FIFO for reading and writing and close it again, so
# that a process still blocked opening it (its partner was killed before
# it opened its end) goes on and sees end of file or a broken pipe
unblock() {
	: 3<>"$1"
}

# killed STATUS: whether an exit status is that of SIGKILL
killed() { (($1 == 137)); }

# tagged_pids: the processes this trial started that are still there
tagged_pids() {
	env -u CRASH_TAG grep -lsxzaF "CRASH_TAG=$CRASH_TAG" /proc/[0-9]*/environ 2>/dev/null |
		sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p'
}

# reap_tagged [GRACE_MS]: wait up to GRACE_MS (default 2000) for this
# trial's leftover processes (commands of a killed mq-recv -x, say) to
# end by themselves, then SIGKILL what is left
reap_tagged() {
	local grace=${1:-2000} i pids
	for ((i = 0; i < grace / 20; i++)); do
		pids=$(tagged_pids)
		[[ -z $pids ]] && return 0
		sleep 0.02
	done
	pids=$(tagged_pids)
	[[ -n $pids ]] && kill -KILL $pids 2>/dev/null
	return 0
}

# gen_lines ID N PAD REC [KILLAT VICTIM]: print "P<ID>-<n>[.xxx]" for n in
# 1..N, flushing each line, and append n to REC once it is in the pipe
# (so REC's last line is what was handed over).  With KILLAT, SIGKILL
# VICTIM right after line KILLAT was handed over.
gen_lines() {
	awk -v id="$1" -v n="$2" -v padn="$3" -v rec="$4" \
	    -v killat="${5:-0}" -v victim="${6:-0}" 'BEGIN {
		pad = ""
		if (padn > 0) {
			pad = sprintf("%" padn "s", "")
			gsub(/ /, "x", pad)
			pad = "." pad
		}
		for (i = 1; i <= n; i++) {
			printf "P%d-%d%s\n", id, i, pad
			fflush()
			print i > rec
			fflush(rec)
			if (i == killat)
				system("kill -9 " victim)
		}
	}'
}

# partitions_of TOPIC: the topic's partitions setting (0 when missing)
partitions_of() {
	local cfg=$S/topics/$1/config n
	[[ -f $cfg ]] || { echo 0; return; }
	n=$(sed -n 's/^partitions=//p' "$cfg" | tail -n 1)
	echo "${n:-1}"
}

# dump_topic TOPIC FILE: "PART OFFSET PAYLOAD" per readable message, in
# offset order per partition; sets DUMP_RC (mq-recv's exit status)
dump_topic() {
	DUMP_RC=0
	"$MQRECV" -F '%p %o %s\n' "$1" >"$2.raw" 2>"$2.err" || DUMP_RC=$?
	sort -s -k1,1n -k2,2n "$2.raw" >"$2"
}

# check_offsets DUMP WHAT: offsets start at 0 and go up by one in every
# partition, as read back
check_offsets() {
	local bad
	bad=$(awk '
		$2 != next_[$1] + 0 {
			printf "partition %s: offset %s where %d was due\n", $1, $2, next_[$1] + 0
			exit
		}
		{ next_[$1] = $2 + 1 }' "$1")
	[[ -z $bad ]] || violation "$2: offsets not contiguous: $bad"
}

# check_producers DUMP PRODUCERS [EXTRA_RE]: the messages of producers
# that sent "P<id>-<n>" lines.  PRODUCERS has "ID SENT EXACT" per
# producer: SENT lines handed over, EXACT 1 when its mq-send exited 0
# (then all of them must be there).  For every producer the readable
# messages are 1..k in offset order (a prefix, in order, no duplicate),
# k <= SENT; nothing else is readable but payloads matching EXTRA_RE.
check_producers() {
	local out
	out=$(awk -v extra="${3:-^$}" '
		FILENAME == ARGV[1] { sent[$1] = $2; exact[$1] = $3; next }
		{
			pl = $3
			if (pl ~ extra)
				next
			if (pl !~ /^P[0-9]+-[0-9]+(\.x*)?$/) {
				print "unknown message at " $1 "/" $2 ": " substr(pl, 1, 60)
				bad++
				next
			}
			sub(/\..*/, "", pl)
			split(substr(pl, 2), f, "-")
			id = f[1]; n = f[2] + 0
			if (!(id in sent)) {
				print "message of unknown producer at " $1 "/" $2 ": " pl
				bad++
				next
			}
			if (n != got[id] + 1) {
				print "producer " id ": P" id "-" n " at " $1 "/" $2 " after P" id "-" got[id] + 0 " (not a prefix in order)"
				bad++
			}
			if (n > got[id])
				got[id] = n
		}
		END {
			for (id in sent) {
				if (got[id] + 0 > sent[id] + 0)
					print "producer " id ": " got[id] " messages readable, only " sent[id] " handed over"
				if (exact[id] == 1 && got[id] + 0 != sent[id] + 0)
					print "producer " id ": mq-send exited 0 after " sent[id] " messages, " got[id] + 0 " readable"
			}
		}' "$2" "$1" | head -n 20)
	if [[ -n $out ]]; then
		while IFS= read -r l; do violation "$l"; done <<<"$out"
	fi
}

# scan_segments TOPIC [--allow-torn-tail]: no damage in the segment files
# (see crashtool.py); the scan goes to $T/scan.TOPIC
scan_segments() {
	local d=$S/topics/$1 out
	[[ -d $d ]] || return 0
	if ! out=$(python3 "$CRASHTOOL" scan "$d" ${2:-} 2>&1); then
		while IFS= read -r l; do
			[[ $l == problem:* ]] && violation "segments of $1${2:+ (after the crash)}: ${l#problem: }"
		done <<<"$out"
	fi
	printf '%s\n' "$out" >"$T/scan.$1"
	SCAN_TORN=0
	grep -qE ' (torn|zero)@' <<<"$out" && SCAN_TORN=1
	return 0
}

# check_recovery TOPIC DUMP: after a crash, what was readable stays
# readable once the next writer of every partition has sent "probe";
# verify is 0 right away (a torn tail is no problem: it names it) and
# 0 after the probes
check_recovery() {
	local topic=$1 dump=$2 p parts rc
	scan_segments "$topic" --allow-torn-tail
	if [[ -d $S/topics/$topic ]]; then
		rc=0
		"$MQTOPIC" verify "$topic" >"$T/verify0.out" 2>&1 || rc=$?
		if ((rc != 0)); then
			violation "verify $topic exited $rc after the crash: $(head -c 300 "$T/verify0.out")"
		elif ((SCAN_TORN == 1)) && ! grep -q 'torn tail' "$T/verify0.out"; then
			violation "verify $topic did not name a torn tail: $(grep -E ' (torn|zero)@' "$T/scan.$topic" | head -n 2 | tr '\n' ' ')"
		fi
		record torn_tail "$SCAN_TORN"
	fi
	parts=$(partitions_of "$topic")
	((parts == 0)) && parts=1
	for ((p = 0; p < parts; p++)); do
		rc=0
		"$MQSEND" -p "$p" "$topic" probe 2>>"$T/probe.err" || rc=$?
		((rc == 0)) || violation "mq-send -p $p $topic probe exited $rc after the crash: $(tail -n 1 "$T/probe.err")"
	done
	rc=0
	"$MQTOPIC" verify "$topic" >"$T/verify1.out" 2>&1 || rc=$?
	((rc == 0)) || violation "verify $topic exited $rc after the next writer: $(head -c 300 "$T/verify1.out")"
	scan_segments "$topic"
	dump_topic "$topic" "$T/after"
	((DUMP_RC == 0)) || violation "mq-recv $topic exited $DUMP_RC after the next writer: $(head -c 200 "$T/after.err")"
	check_offsets "$T/after" "after the next writer"
	# what was readable before is still there, in the same place, and
	# only the probes were added
	local diffs
	diffs=$(awk '
		FILENAME == ARGV[1] { before[$1 " " $2] = $3; nb++; next }
		{ k = $1 " " $2 }
		k in before { if (before[k] != $3) { print "message at " k " changed"; bad = 1 } seen++; next }
		$3 != "probe" { print "new message at " k ": " substr($3, 1, 60); bad = 1 }
		END { if (seen + 0 != nb + 0) print nb - seen " messages readable before the next writer are gone" }
		' "$dump" "$T/after" | head -n 5)
	if [[ -n $diffs ]]; then
		while IFS= read -r l; do violation "recovery: $l"; done <<<"$diffs"
	fi
	local nprobe
	nprobe=$(grep -c ' probe$' "$T/after")
	((nprobe == parts)) || violation "recovery: $nprobe probes readable, $parts sent"
}

# check_topic_whole TOPIC PARTS...: TOPIC exists whole: describe works
# and names one of PARTS partitions with a row each, verify is 0, list
# shows it
check_topic_whole() {
	local topic=$1 rc n rows
	shift
	rc=0
	"$MQTOPIC" describe "$topic" >"$T/describe.out" 2>&1 || rc=$?
	if ((rc != 0)); then
		violation "describe $topic exited $rc: $(head -c 200 "$T/describe.out")"
		return
	fi
	n=$(sed -n 's/^partitions //p' "$T/describe.out")
	case " $* " in
	*" $n "*) ;;
	*) violation "describe $topic: partitions '$n', expected one of: $*" ;;
	esac
	rows=$(awk '/^ *PARTITION /{t = 1; next} /^ *GROUP /{t = 0} t && $1 ~ /^[0-9]+$/' "$T/describe.out" | wc -l)
	[[ $rows == "$n" ]] || violation "describe $topic: $rows partition rows for partitions $n"
	rc=0
	"$MQTOPIC" verify "$topic" >"$T/verify.out" 2>&1 || rc=$?
	((rc == 0)) || violation "verify $topic exited $rc: $(head -c 300 "$T/verify.out")"
	"$MQTOPIC" list >"$T/list.out" 2>&1 || violation "mq-topic list exited $?"
	grep -qxF "$topic" "$T/list.out" || violation "list does not show $topic though describe does"
}

# topic_absent TOPIC: 0 when the topic does not exist (describe says 66
# and list does not show it); a violation when the two disagree
topic_absent() {
	local rc=0 lrc=0
	"$MQTOPIC" describe "$1" >"$T/describe.out" 2>&1 || rc=$?
	"$MQTOPIC" list >"$T/list.out" 2>&1 || lrc=$?
	if ((lrc != 0 && lrc != 66)); then
		violation "mq-topic list exited $lrc: $(head -c 200 "$T/list.out")"
	fi
	if ((rc == 66)); then
		grep -qxF "$1" "$T/list.out" && violation "list shows $1 but describe says it does not exist"
		return 0
	fi
	((rc == 0)) || violation "describe $1 exited $rc: $(head -c 200 "$T/describe.out")"
	return 1
}

# ---- scenario 1: one streaming producer -----------------------------------

scn_send_stream() {
	local t=t opts=() n pad sst gst sent killat=0 mode exact d
	# half the trials create the topic first, with small segments, so that
	# kills also land while a segment is ended and the next one started
	rnd 2
	if ((R == 0)); then
		local sb=(1024 4096 65536)
		rnd 3
		"$MQTOPIC" create --config segment.bytes="${sb[R]}" "$t" 2>>"$T/err" ||
			violation "create $t exited $?"
		log "topic created, segment.bytes=${sb[R]}"
	fi
	rnd 4; ((R == 0)) && opts+=(-z zlib)
	rnd 4; ((R == 0)) && opts+=(--no-sync)
	rnd 4; ((R == 0)) && opts+=(--sync-interval 5ms)
	rnd 3
	if ((R == 0)); then rnd 3000; n=$((R + 1)); else n=100000000; fi
	local pads=(0 0 30 300)
	rnd 4; pad=${pads[R]}
	rnd 2; mode=$((R == 0 ? 1 : 0))    # 1: kill after a number of lines
	mkfifo "$T/fifo"
	"$MQSEND" "${opts[@]}" "$t" <"$T/fifo" >"$T/send.out" 2>"$T/send.err" &
	local spid=$!
	if ((mode)); then
		rnd 50000; killat=$((R + 1))
	fi
	gen_lines 1 "$n" "$pad" "$T/sent.1" "$killat" "$spid" >"$T/fifo" 2>/dev/null &
	local gpid=$!
	if ((!mode)); then
		pick_delay_us 200; d=$R
		usleep_us "$d"
		kill -KILL "$spid" 2>/dev/null
		unblock "$T/fifo"
	fi
	sst=0; wait "$spid" || sst=$?
	gst=0; wait "$gpid" || gst=$?
	sent=$(tail -n 1 "$T/sent.1" 2>/dev/null); sent=${sent:-0}
	log "send-stream: opts=${opts[*]} n=$n pad=$pad mode=$mode killat=$killat delay=${d:-} mq-send=$sst sent=$sent"
	killed "$sst" && record killed 1
	exact=0
	if ((sst == 0)); then
		exact=1
	elif ! killed "$sst"; then
		violation "mq-send exited $sst: $(head -c 200 "$T/send.err")"
	fi
	echo "1 $sent $exact" >"$T/producers"
	dump_topic "$t" "$T/before"
	if ((DUMP_RC == 66)) && [[ ! -d $S/topics/$t ]]; then
		log "no topic: killed before it was created"
	elif ((DUMP_RC != 0)); then
		violation "mq-recv $t exited $DUMP_RC after the crash: $(head -c 200 "$T/before.err")"
	fi
	check_offsets "$T/before" "after the crash"
	check_producers "$T/before" "$T/producers"
	record messages "$(wc -l <"$T/before")"
	check_recovery "$t" "$T/before"
}

# ---- scenario 2: one-shot sends, one of them killed -----------------------

scn_send_oneshot() {
	local t=t victim d n st max after=-1 pid
	rnd 2
	if ((R == 0)); then
		local sb=(1024 2048)
		rnd 2
		"$MQTOPIC" create --config segment.bytes="${sb[R]}" "$t" 2>>"$T/err" ||
			violation "create $t exited $?"
	fi
	rnd 20; victim=$((R + 1))
	pick_delay_us 5; d=$R
	max=$((victim + 3))
	: >"$T/status"
	for ((n = 1; n <= max; n++)); do
		"$MQSEND" "$t" "m$n" 2>>"$T/send.err" &
		pid=$!
		if ((n == victim)); then
			usleep_us "$d"
			kill -KILL "$pid" 2>/dev/null
		fi
		st=0; wait "$pid" || st=$?
		echo "$n $st" >>"$T/status"
	done
	st=$(awk -v v="$victim" '$1 == v { print $2 }' "$T/status")
	log "send-oneshot: victim=m$victim delay=${d}us status=$st"
	killed "$st" && record killed 1
	dump_topic "$t" "$T/before"
	((DUMP_RC == 0)) || violation "mq-recv $t exited $DUMP_RC after the crash: $(head -c 200 "$T/before.err")"
	check_offsets "$T/before" "after the crash"
	local out
	out=$(awk '
		FILENAME == ARGV[1] { st[$1] = $2; next }
		{
			if ($3 !~ /^m[0-9]+$/ || !(substr($3, 2) in st)) { print "unknown message at " $1 "/" $2 ": " $3; next }
			n = substr($3, 2) + 0
			cnt[n]++
			if (n <= last) print "m" n " at " $1 "/" $2 " after m" last " (sends were one after the other)"
			last = n
		}
		END {
			for (n in st) {
				if (st[n] == 0 && cnt[n] != 1) print "m" n ": mq-send exited 0, readable " cnt[n] + 0 " times"
				else if (st[n] == 137 && cnt[n] > 1) print "m" n ": killed mq-send, readable " cnt[n] " times"
				else if (st[n] != 0 && st[n] != 137) print "m" n ": mq-send exited " st[n] " (not killed)"
			}
		}' "$T/status" "$T/before" | head -n 20)
	if [[ -n $out ]]; then
		while IFS= read -r l; do violation "$l"; done <<<"$out"
	fi
	check_recovery "$t" "$T/before"
}

# ---- scenario 3: four producers at once, some killed ----------------------

scn_send_concurrent() {
	local t=t parts keyed i sst n pad mask d order=() pids=() gpids=() st sent exact
	# every other trial of the scenario: 1 partition, or 3 with keys
	if (((TRIAL / ${#SCENARIOS[@]}) % 2 == 0)); then parts=1; else parts=3; fi
	local sb=(1024 8192 1073741824)
	rnd 3
	"$MQTOPIC" create -P "$parts" --config segment.bytes="${sb[R]}" "$t" 2>>"$T/err" ||
		violation "create -P $parts $t exited $?"
	rnd 15; mask=$((R + 1))
	: >"$T/producers"
	for i in 1 2 3 4; do
		local opts=()
		((parts > 1)) && opts+=(-k "K$i")
		rnd 4; ((R == 0)) && opts+=(-z zlib)
		mkfifo "$T/fifo.$i"
		"$MQSEND" "${opts[@]}" "$t" <"$T/fifo.$i" >/dev/null 2>"$T/send.err.$i" &
		pids[i]=$!
		rnd 40000; n=$((R + 500))
		local pads=(0 20 200)
		rnd 3; pad=${pads[R]}
		gen_lines "$i" "$n" "$pad" "$T/sent.$i" >"$T/fifo.$i" 2>/dev/null &
		gpids[i]=$!
	done
	# kill the chosen ones, each after its own delay, in time order
	local now=0 delays=""
	for i in 1 2 3 4; do
		if (((mask >> (i - 1)) & 1)); then rnd 200000; delays+="$R $i"$'\n'; fi
	done
	while read -r d i; do
		[[ -n $d ]] || continue
		usleep_us $((d - now))
		now=$d
		kill -KILL "${pids[i]}" 2>/dev/null
		unblock "$T/fifo.$i"
	done < <(sort -n <<<"$delays")
	for i in 1 2 3 4; do
		st=0; wait "${pids[i]}" || st=$?
		wait "${gpids[i]}" 2>/dev/null
		sent=$(tail -n 1 "$T/sent.$i" 2>/dev/null); sent=${sent:-0}
		exact=0
		if ((st == 0)); then
			exact=1
		elif killed "$st" && (((mask >> (i - 1)) & 1)); then
			record killed 1
		else
			violation "producer $i: mq-send exited $st: $(head -c 200 "$T/send.err.$i")"
		fi
		echo "$i $sent $exact" >>"$T/producers"
	done
	log "send-concurrent: partitions=$parts kill-mask=$mask producers: $(tr '\n' ';' <"$T/producers")"
	dump_topic "$t" "$T/before"
	((DUMP_RC == 0)) || violation "mq-recv $t exited $DUMP_RC after the crash: $(head -c 200 "$T/before.err")"
	check_offsets "$T/before" "after the crash"
	check_producers "$T/before" "$T/producers"
	record messages "$(wc -l <"$T/before")"
	check_recovery "$t" "$T/before"
}

# ---- scenario 4: consumer groups, a member killed -------------------------

GROUP_MSGS=2000        # messages in topic t of the template
GROUP_PAYLOAD=1500     # bytes of each of them: 1 MiB holds 699 lines
GROUP_XMSGS=90         # messages in topic x, for -x
GROUP_BUF=1048576      # mq-recv's output buffer (mq-recv(1), Commits)

# seed_groups DIR: a template spool with topic t (GROUP_MSGS messages of
# GROUP_PAYLOAD bytes on 3 partitions) and topic x (GROUP_XMSGS short ones
# on 3 partitions), and DIR/t.map, DIR/x.map ("PART OFFSET PAYLOAD")
seed_groups() {
	local dir=$1
	mkdir -p "$dir"
	MQ_SPOOL=$dir/spool "$BIN/mq-topic" create -P 3 t &&
		MQ_SPOOL=$dir/spool "$BIN/mq-topic" create -P 3 x || return 1
	awk -v n="$GROUP_MSGS" -v len="$GROUP_PAYLOAD" 'BEGIN {
		for (i = 1; i <= n; i++) {
			p = "G" i "."
			while (length(p) < len) p = p "x"
			print "k" i " " substr(p, 1, len)
		}
	}' | MQ_SPOOL=$dir/spool "$BIN/mq-send" -K ' ' t || return 1
	awk -v n="$GROUP_XMSGS" 'BEGIN { for (i = 1; i <= n; i++) print "k" i " X" i }' | MQ_SPOOL=$dir/spool "$BIN/mq-send" -K ' ' x || return 1
	MQ_SPOOL=$dir/spool "$BIN/mq-recv" -F '%p %o %s\n' t | sort -k1,1n -k2,2n >"$dir/t.map" &&
		MQ_SPOOL=$dir/spool "$BIN/mq-recv" -F '%p %o %s\n' x | sort -k1,1n -k2,2n >"$dir/x.map" || return 1
	[[ $(wc -l <"$dir/t.map") == "$GROUP_MSGS" && $(wc -l <"$dir/x.map") == "$GROUP_XMSGS" ]]
}

# check_group_stdout MAP OUT1 OUT2: OUT1 is what a killed member printed
# (its last line may be cut short), OUT2 what the next run printed; in
# each, every partition's messages come in offset order without gaps,
# the first from offset 0 (a new group), the second from at most one past
# where the first got, to the end; so nothing is lost, and a duplicate is
# a message in flight: prints the number of duplicates
check_group_stdout() {
	awk -v bound="$4" '
		FILENAME == ARGV[1] { off[$3] = $1 " " $2; last[$1] = $2; next }
		{ run = FILENAME == ARGV[2] ? 1 : 2 }
		{ lines[run] = FNR; text[run, FNR] = $0 }
		END {
			for (r = 1; r <= 2; r++) {
				for (i = 1; i <= lines[r]; i++) {
					pl = text[r, i]
					if (!(pl in off)) {
						if (r == 1 && i == lines[r] && pl ~ /^(G[0-9]*(\.x*)?)?$/) { partial++; continue }
						printf "VIOLATION run %d line %d: not a message of the topic: %s\n", r, i, substr(pl, 1, 40)
						continue
					}
					split(off[pl], po, " "); p = po[1]; o = po[2] + 0
					if (!((r, p) in first)) {
						first[r, p] = o
						if (r == 1 && o != 0) printf "VIOLATION run 1: partition %s starts at %d, not 0\n", p, o
						if (r == 2) {
							e1 = ((1, p) in end_) ? end_[1, p] : -1
							if (o > e1 + 1) printf "VIOLATION run 2: partition %s starts at %d, run 1 ended at %d: lost %d messages\n", p, o, e1, o - e1 - 1
							if (o <= e1) dups += e1 - o + 1
						}
					} else if (o != end_[r, p] + 1) {
						printf "VIOLATION run %d: partition %s: offset %d after %d\n", r, p, o, end_[r, p]
					}
					end_[r, p] = o
				}
			}
			for (p in last) {
				e = ((2, p) in end_) ? end_[2, p] : (((1, p) in end_) ? end_[1, p] : -1)
				if (e != last[p]) printf "VIOLATION partition %s: delivered up to %d, the last offset is %d\n", p, e, last[p]
			}
			if (dups > bound) printf "VIOLATION %d duplicates, more than the %d lines an output buffer holds\n", dups, bound
			print "dups " dups + 0
			print "partial " partial + 0
		}' "$1" "$2" "$3"
}

# check_group_exec MAP RUNS JOBS: RUNS has "PART OFFSET PAYLOAD" per
# command run (both runs, and the commands of the killed one); every
# message ran at least once with its own payload, in offset order per
# partition; a message ran twice only if in flight: at most one per
# partition and at most JOBS in all.  A command whose mq-recv was killed
# while it wrote the payload to the command's stdin sees it cut short
# (a prefix, maybe empty): such a run is counted apart ("cut"), not as a
# run of the message.
check_group_exec() {
	awk -v jobs="$3" '
		FILENAME == ARGV[1] { pl[$1 " " $2] = $3; next }
		{
			k = $1 " " $2
			if (!(k in pl)) { printf "VIOLATION command ran for %s, not a message\n", k; next }
			if ($3 != pl[k] && index(pl[k], $3) == 1) { cut++; next }
			if ($3 != pl[k]) printf "VIOLATION command for %s got payload %s, not %s\n", k, substr($3, 1, 40), pl[k]
			if (cnt[k]++ == 0) {
				if (($1 in hi) && $2 + 0 < hi[$1]) printf "VIOLATION partition %s: offset %d first ran after %d\n", $1, $2, hi[$1]
				hi[$1] = $2 + 0
			}
		}
		END {
			for (k in pl) {
				if (!(k in cnt)) { printf "VIOLATION command never ran for %s\n", k; continue }
				if (cnt[k] > 1) {
					split(k, po, " ")
					dups += cnt[k] - 1; dp[po[1]] += cnt[k] - 1
				}
			}
			for (p in dp) if (dp[p] > 1) printf "VIOLATION partition %s: %d reruns, more than the one in flight\n", p, dp[p]
			if (dups > jobs) printf "VIOLATION %d reruns, more than the %d commands in flight\n", dups, jobs
			print "dups " dups + 0
			print "cut " cut + 0
		}' "$1" "$2"
}

# check_group_done TOPIC: the group has committed everything: another run
# prints nothing, and mq-topic groups shows no lag
check_group_done() {
	local rc=0 n
	"$MQRECV" -g g "$1" >"$T/out3" 2>"$T/out3.err" || rc=$?
	((rc == 0)) || violation "third mq-recv -g g $1 exited $rc: $(head -c 200 "$T/out3.err")"
	n=$(wc -l <"$T/out3")
	((n == 0)) || violation "third mq-recv -g g $1 printed $n messages after a full run"
	rc=0
	"$MQTOPIC" groups "$1" >"$T/groups.out" 2>&1 || rc=$?
	((rc == 0)) || violation "mq-topic groups $1 exited $rc"
	n=$(awk '$1 == "g" && $5 != 0' "$T/groups.out" | wc -l)
	((n == 0)) || violation "group g still lags: $(tr '\n' ';' <"$T/groups.out")"
}

# group_let_go TOPIC: wait (up to 2 s) until nothing holds group g's
# member and partition locks.  A command's process holds mq-recv's
# flock(2) locks from its fork until it closes them before its exec
# (jobs.c); one forked just before mq-recv was killed does that a
# moment after the kill, and a member starting in that moment counts it
# as a live member and reads only its share.  A crashed machine leaves
# no such process behind.
group_let_go() {
	local i f held
	for ((i = 0; i < 200; i++)); do
		held=
		for f in "$S/topics/$1/groups/g"/member.* "$S/topics/$1/groups/g"/[0-9]*.lock; do
			[[ -e $f ]] || continue
			flock -n -x "$f" true || { held=$f; break; }
		done
		[[ -z $held ]] && return 0
		sleep 0.01
	done
	violation "group $1: $held still locked 2 s after the kill"
}

scn_group_recv() {
	local variant d rc st killat=0 how out
	local variants=(stdout follow exec exec-follow)
	variant=${variants[$(((TRIAL / ${#SCENARIOS[@]}) % 4))]}
	cp -a "$GROUP_TEMPLATE/spool/." "$S/"
	case $variant in
	stdout | follow)
		local fopt=()
		[[ $variant == follow ]] && fopt=(-f)
		rnd 2
		if ((R == 0)); then
			# straight into a file, killed after a random time
			how=time
			"$MQRECV" "${fopt[@]}" -g g t >"$T/out1" 2>"$T/recv1.err" &
			local rp=$!
			pick_delay_us 60; d=$R
			usleep_us "$d"
			kill -KILL "$rp" 2>/dev/null
			st=0; wait "$rp" || st=$?
		else
			# through a pipe, killed once the reader has a random
			# number of lines (or after a time, for -f)
			how=lines
			rnd "$GROUP_MSGS"; killat=$((R + 1))
			mkfifo "$T/fifo"
			"$MQRECV" "${fopt[@]}" -g g t >"$T/fifo" 2>"$T/recv1.err" &
			local rp=$!
			awk -v k="$killat" -v pid="$rp" '{ print } NR == k { system("kill -9 " pid) }' \
			    <"$T/fifo" >"$T/out1" &
			local ap=$!
			if [[ $variant == follow ]]; then
				rnd 300000; usleep_us "$R"
				kill -KILL "$rp" 2>/dev/null
				unblock "$T/fifo"
			fi
			st=0; wait "$rp" || st=$?
			wait "$ap"
		fi
		log "group-recv $variant: $how killat=$killat delay=${d:-} status=$st lines=$(wc -l <"$T/out1")"
		if killed "$st"; then
			record killed 1
		elif ((st != 0)); then
			violation "mq-recv ${fopt[*]} -g g t exited $st: $(head -c 200 "$T/recv1.err")"
		fi
		rc=0
		"$MQRECV" -g g t >"$T/out2" 2>"$T/recv2.err" || rc=$?
		((rc == 0)) || violation "second mq-recv -g g t exited $rc: $(head -c 200 "$T/recv2.err")"
		local bound=$((GROUP_BUF / (GROUP_PAYLOAD + 1) + 1))
		out=$(check_group_stdout "$GROUP_TEMPLATE/t.map" "$T/out1" "$T/out2" "$bound")
		check_group_done t
		;;
	exec | exec-follow)
		local fopt=() jobs cmd kill_all
		[[ $variant == exec-follow ]] && fopt=(-f)
		rnd 3; jobs=$((R + 1))
		rnd 2; kill_all=$R
		# one write per run, so that runs of two commands never mix
		cmd='read -r l; echo "$MQ_PARTITION $MQ_OFFSET $l" >>"$CRASH_RUNS"'
		export CRASH_RUNS=$T/runs
		: >"$CRASH_RUNS"
		"$MQRECV" "${fopt[@]}" -g g -j "$jobs" -x "$cmd" x >"$T/recv1.out" 2>"$T/recv1.err" &
		local rp=$!
		rnd 250000; d=$R    # 90 commands take about 300 ms
		usleep_us "$d"
		if ((kill_all)); then
			# as a crash of the machine would: the commands too
			local pids
			pids=$(tagged_pids)
			kill -KILL $pids 2>/dev/null
		else
			kill -KILL "$rp" 2>/dev/null
		fi
		st=0; wait "$rp" || st=$?
		log "group-recv $variant: jobs=$jobs kill_all=$kill_all delay=$d status=$st ran=$(wc -l <"$CRASH_RUNS")"
		if killed "$st"; then
			record killed 1
		elif ((st != 0)); then
			violation "mq-recv ${fopt[*]} -g g -x x exited $st: $(head -c 200 "$T/recv1.err")"
		fi
		group_let_go x
		rc=0
		"$MQRECV" -g g -j "$jobs" -x "$cmd" x >"$T/recv2.out" 2>"$T/recv2.err" || rc=$?
		((rc == 0)) || violation "second mq-recv -g g -x x exited $rc: $(head -c 200 "$T/recv2.err")"
		reap_tagged 3000
		out=$(check_group_exec "$GROUP_TEMPLATE/x.map" "$CRASH_RUNS" "$jobs")
		check_group_done x
		;;
	esac
	local dups cut
	dups=$(sed -n 's/^dups //p' <<<"$out")
	cut=$(sed -n 's/^cut //p' <<<"$out")
	[[ -n $cut && $cut != 0 ]] && log "group-recv $variant: $cut commands saw their payload cut short"
	record dups "${dups:-0}"
	record "dups_$variant" "${dups:-0}"
	log "group-recv $variant: dups=${dups:-0}"
	while IFS= read -r l; do
		[[ $l == VIOLATION* ]] && violation "group $variant: ${l#VIOLATION }"
	done <<<"$out"
}

# ---- scenario 5: topic creation (and growth, deletion) killed ------------

scn_topic_create() {
	local variant d st rc t=t
	local variants=(create autocreate grow delete)
	variant=${variants[$(((TRIAL / ${#SCENARIOS[@]}) % 4))]}
	case $variant in
	create)
		"$MQTOPIC" create -P 4 "$t" 2>"$T/op.err" & ;;
	autocreate)
		"$MQSEND" "$t" hello 2>"$T/op.err" & ;;
	grow | delete)
		"$MQTOPIC" create -P 2 "$t" 2>>"$T/err" || violation "create -P 2 $t exited $?"
		seq 20 | "$MQSEND" "$t" 2>>"$T/err" || violation "mq-send $t exited $?"
		if [[ $variant == grow ]]; then
			"$MQTOPIC" config "$t" partitions=5 2>"$T/op.err" &
		else
			"$MQTOPIC" delete "$t" 2>"$T/op.err" &
		fi ;;
	esac
	local pid=$!
	local fast=(25 10 12 15)    # ms: about how long each variant takes
	pick_delay_us "${fast[$(((TRIAL / ${#SCENARIOS[@]}) % 4))]}"; d=$R
	usleep_us "$d"
	kill -KILL "$pid" 2>/dev/null
	st=0; wait "$pid" || st=$?
	killed "$st" && record killed 1
	log "topic-create $variant: delay=${d}us status=$st tmp=$(ls "$S/tmp" 2>/dev/null | wc -l)"
	if ((st != 0)) && ! killed "$st"; then
		violation "$variant exited $st: $(head -c 200 "$T/op.err")"
	fi
	case $variant in
	create)
		if topic_absent "$t"; then
			((st == 0)) && violation "create exited 0 but $t does not exist"
			rc=0; "$MQTOPIC" create -P 4 "$t" 2>"$T/op2.err" || rc=$?
			((rc == 0)) || violation "create -P 4 $t after the crash exited $rc: $(head -c 200 "$T/op2.err")"
		else
			rc=0; "$MQTOPIC" create -P 4 "$t" 2>"$T/op2.err" || rc=$?
			((rc == 64)) || violation "create of the existing $t exited $rc, not 64"
		fi
		check_topic_whole "$t" 4 ;;
	autocreate)
		if topic_absent "$t"; then
			((st == 0)) && violation "mq-send exited 0 but $t does not exist"
		else
			check_topic_whole "$t" 1
		fi ;;
	grow)
		if topic_absent "$t"; then
			violation "$t is gone after a killed config partitions=5"
		else
			check_topic_whole "$t" 2 5
			((st == 0)) && [[ $(partitions_of "$t") != 5 ]] && violation "config exited 0 but partitions is $(partitions_of "$t")"
		fi
		rc=0; "$MQTOPIC" config "$t" partitions=5 2>"$T/op2.err" || rc=$?
		((rc == 0)) || violation "config $t partitions=5 after the crash exited $rc: $(head -c 200 "$T/op2.err")"
		check_topic_whole "$t" 5
		rc=0; "$MQSEND" -p 4 "$t" p4 2>"$T/op3.err" || rc=$?
		((rc == 0)) || violation "mq-send -p 4 $t exited $rc: $(head -c 200 "$T/op3.err")" ;;
	delete)
		if topic_absent "$t"; then
			rc=0
		else
			((st == 0)) && violation "delete exited 0 but $t still exists"
			check_topic_whole "$t" 2
			rc=0; "$MQTOPIC" delete "$t" 2>"$T/op2.err" || rc=$?
			((rc == 0)) || violation "delete $t after the crash exited $rc: $(head -c 200 "$T/op2.err")"
			topic_absent "$t" || violation "$t still there after delete"
		fi
		rc=0; "$MQTOPIC" create -P 2 "$t" 2>"$T/op2.err" || rc=$?
		((rc == 0)) || violation "create $t after the delete exited $rc: $(head -c 200 "$T/op2.err")"
		check_topic_whole "$t" 2 ;;
	esac
	# whatever is left behind, a later send works and everything verifies
	rc=0; "$MQSEND" "$t" after 2>"$T/op3.err" || rc=$?
	((rc == 0)) || violation "mq-send $t after the crash exited $rc: $(head -c 200 "$T/op3.err")"
	dump_topic "$t" "$T/final"
	((DUMP_RC == 0)) || violation "mq-recv $t exited $DUMP_RC: $(head -c 200 "$T/final.err")"
	grep -q ' after$' "$T/final" || violation "the message sent after the crash is not readable"
	[[ $variant == autocreate ]] && (($(grep -c ' hello$' "$T/final") > 1)) &&
		violation "hello readable $(grep -c ' hello$' "$T/final") times"
	[[ $variant == autocreate && $st == 0 ]] && ! grep -q ' hello$' "$T/final" &&
		violation "mq-send exited 0 but hello is not readable"
	check_offsets "$T/final" "after the crash"
	rc=0; "$MQTOPIC" verify >"$T/verifyall.out" 2>&1 || rc=$?
	((rc == 0)) || violation "mq-topic verify (all topics) exited $rc: $(head -c 300 "$T/verifyall.out")"
	scan_segments "$t"
}

# ---- scenario 6: verify --repair killed -----------------------------------

scn_verify_repair() {
	local t=t parts sb i n p seg size cut mode d st rc
	rnd 2; parts=$((R + 1))
	local sbs=(1024 4096 1073741824)
	rnd 3; sb=${sbs[R]}
	"$MQTOPIC" create -P "$parts" --config segment.bytes="$sb" "$t" 2>>"$T/err" ||
		violation "create $t exited $?"
	rnd 8; n=$((R + 3))
	for ((i = 1; i <= n; i++)); do
		rnd 60
		seq -f "r$i-%g" $((R + 1)) | "$MQSEND" -p $((i % parts)) "$t" 2>>"$T/err" ||
			violation "mq-send #$i exited $?"
	done
	dump_topic "$t" "$T/orig"
	rnd "$parts"; p=$R
	seg=$(ls "$S/topics/$t/$p/"*.log | tail -n 1)
	size=$(stat -c %s "$seg")
	local modes=(truncate truncate zeros garbage)
	rnd 4; mode=${modes[R]}
	case $mode in
	truncate)
		# most often inside the last batch, sometimes further back
		rnd 3
		if ((R == 0)); then rnd $((size + 1)); cut=$R; else rnd 200; cut=$((size > R + 1 ? size - R - 1 : 0)); fi
		truncate -s "$cut" "$seg" ;;
	zeros)
		rnd 300; head -c $((R + 1)) /dev/zero >>"$seg" ;;
	garbage)
		rnd 300; head -c $((R + 64)) /dev/urandom >>"$seg" ;;
	esac
	# what a reader may still get: every message of the whole, good
	# batches before the damage
	python3 "$CRASHTOOL" next "$S/topics/$t" >"$T/next"
	awk 'FILENAME == ARGV[1] { nx[$1] = $2; next } $2 < nx[$1]' "$T/next" "$T/orig" >"$T/expect"
	"$MQTOPIC" verify --repair "$t" >"$T/repair1.out" 2>&1 &
	local pid=$!
	pick_delay_us 3; d=$R
	usleep_us "$d"
	kill -KILL "$pid" 2>/dev/null
	st=0; wait "$pid" || st=$?
	killed "$st" && record killed 1
	log "verify-repair: parts=$parts segment.bytes=$sb batches=$n damage=$mode@$p size=$size cut=${cut:-} delay=${d}us status=$st expect=$(wc -l <"$T/expect")/$(wc -l <"$T/orig")"
	if ((st != 0)) && ! killed "$st"; then
		violation "verify --repair exited $st: $(head -c 300 "$T/repair1.out")"
	fi
	rc=0
	"$MQTOPIC" verify --repair "$t" >"$T/repair2.out" 2>&1 || rc=$?
	((rc == 0)) || violation "second verify --repair exited $rc: $(head -c 300 "$T/repair2.out")"
	rc=0
	"$MQTOPIC" verify "$t" >"$T/verify.out" 2>&1 || rc=$?
	((rc == 0)) || violation "verify after --repair exited $rc: $(head -c 300 "$T/verify.out")"
	scan_segments "$t" --allow-torn-tail
	((SCAN_TORN == 0)) || violation "a torn tail is left after verify --repair: $(grep -E ' (torn|zero)@' "$T/scan.$t" | head -n 1)"
	dump_topic "$t" "$T/after"
	((DUMP_RC == 0)) || violation "mq-recv $t exited $DUMP_RC after --repair: $(head -c 200 "$T/after.err")"
	if ! cmp -s "$T/expect" "$T/after"; then
		violation "after --repair: $(diff "$T/expect" "$T/after" | grep -c '^<') messages before the damage lost, $(diff "$T/expect" "$T/after" | grep -c '^>') unexpected"
	fi
	cp "$T/after" "$T/before"
	check_recovery "$t" "$T/before"
}

# ---- scenario 7: mq-send --id killed, then retried -------------------------

# send_id_once WHAT: run the --id send of $T/in ($ID_OPTS) to $t, killed
# as WHAT says: "strace CALL N" (at the N-th CALL), "delay US", or "none";
# its exit status in $ST
send_id_once() {
	ST=0
	case $1 in
	strace)
		MQ_IO=sync ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
			strace -f -qq -o /dev/null -e inject="$2":signal=KILL:when="$3" \
			"$MQSEND" "${ID_OPTS[@]}" "$t" <"$T/in" >/dev/null 2>>"$T/send.err" || ST=$?
		;;
	delay)
		"$MQSEND" "${ID_OPTS[@]}" "$t" <"$T/in" >/dev/null 2>>"$T/send.err" &
		local pid=$!
		usleep_us "$2"
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" || ST=$?
		;;
	*)
		"$MQSEND" "${ID_OPTS[@]}" "$t" <"$T/in" >/dev/null 2>>"$T/send.err" || ST=$?
		;;
	esac
}

scn_send_id() {
	local t=t parts n keyed how d call when st1 st2 st3 out calls
	calls=(openat pwrite64 fdatasync fsync renameat write flock close mkdirat ftruncate getdents64 pread64)
	rnd 2; parts=$((R == 0 ? 1 : 3))
	local sb=(1024 65536 1073741824)
	rnd 3
	"$MQTOPIC" create -P "$parts" --config segment.bytes="${sb[R]}" "$t" 2>>"$T/err" ||
		violation "create $t exited $?"
	# something of others before, and an earlier send of the ID long gone
	rnd 2; ((R == 0)) && { "$MQSEND" "$t" pre 2>>"$T/err" || violation "pre send exited $?"; }
	rnd 4; if ((R == 0)); then n=3; else rnd 5000; n=$((R + 1)); fi
	rnd 2; keyed=$R
	ID_OPTS=(--id "job-$TRIAL")
	if ((keyed)); then
		ID_OPTS+=(-K :)
		awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) print "k" i % 7 ":m" i }' >"$T/in"
	else
		awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) print "m" i }' >"$T/in"
	fi
	rnd 2; ((R == 0)) && ID_OPTS+=(-z zlib)
	rnd 2
	if ((R == 0)) && command -v strace >/dev/null; then
		rnd ${#calls[@]}; call=${calls[R]}
		rnd 8; when=$((R + 1))
		how="strace $call $when"
	else
		pick_delay_us 30; d=$R
		how="delay $d"
	fi
	send_id_once $how; st1=$ST
	# the retry is killed too, one time in four
	st2=-
	rnd 4
	if ((R == 0)); then
		pick_delay_us 30
		send_id_once delay "$R"; st2=$ST
	fi
	send_id_once none; st3=$ST
	log "send-id: parts=$parts n=$n keyed=$keyed opts=${ID_OPTS[*]} first=($how) $st1, retry $st2, last retry $st3"
	killed "$st1" && record killed 1
	((st1 == 0 || st1 == 137)) || violation "first --id send exited $st1: $(head -c 200 "$T/send.err")"
	[[ $st2 == - || $st2 == 0 || $st2 == 137 ]] || violation "killed retry exited $st2: $(tail -c 200 "$T/send.err")"
	((st3 == 0)) || violation "last retry exited $st3: $(tail -c 200 "$T/send.err")"
	dump_topic "$t" "$T/before"
	((DUMP_RC == 0)) || violation "mq-recv $t exited $DUMP_RC after the retries: $(head -c 200 "$T/before.err")"
	check_offsets "$T/before" "after the retries"
	# every message once: no duplicate, nothing lost
	out=$(awk -v n="$n" '
		$3 == "pre" { next }
		$3 !~ /^m[0-9]+$/ { print "unknown message at " $1 "/" $2 ": " substr($3, 1, 60); next }
		{ c[substr($3, 2) + 0]++ }
		END {
			for (i = 1; i <= n; i++) {
				if (c[i] + 0 == 0) { print "m" i " lost"; if (++bad > 5) exit }
				if (c[i] > 1) { print "m" i " stored " c[i] " times"; if (++bad > 5) exit }
			}
		}' "$T/before")
	if [[ -n $out ]]; then
		while IFS= read -r l; do violation "--id: $l"; done <<<"$out"
		record dups "$(grep -c 'times$' <<<"$out")"
	fi
	# and once more: the ID is known, nothing is stored
	send_id_once none
	((ST == 0)) || violation "a send of a known ID exited $ST"
	dump_topic "$t" "$T/again"
	cmp -s "$T/before" "$T/again" || violation "a send of a known ID stored something"
	check_recovery "$t" "$T/before"
}

# ---- scenario 8: mq-replicate killed, client or server, then resumed --------

scn_replicate() {
	local t=t rep=$T/replica d pid st victim i rc f kids
	local sb=(1024 4096 1073741824)
	rnd 3
	"$MQTOPIC" create -P 2 --config segment.bytes="${sb[R]}" "$t" 2>>"$T/err" ||
		violation "create $t exited $?"
	for ((i = 0; i < 8; i++)); do
		seq -f "a$i-%g" 2000 | "$MQSEND" "$t" 2>>"$T/send.err" ||
			violation "mq-send exited $?"
	done
	# a first copy, sometimes, so that the killed run is an incremental one
	rnd 2
	if ((R == 0)); then
		"$MQREPL" "$S" "$rep" 2>>"$T/repl.err" || violation "first mq-replicate exited $?"
		for ((i = 0; i < 3; i++)); do
			seq -f "b$i-%g" 200 | "$MQSEND" "$t" 2>>"$T/send.err"
		done
	fi
	rnd 2; victim=$R	# 0: the client (receiver), 1: the forked server
	pick_delay_us 20; d=$R
	"$MQREPL" "$S" "$rep" 2>>"$T/repl.err" &
	pid=$!
	usleep_us "$d"
	if ((victim == 1)); then
		kids=$(pgrep -P "$pid" 2>/dev/null || true)
		[[ -n $kids ]] && kill -KILL $kids 2>/dev/null
	else
		kill -KILL "$pid" 2>/dev/null
	fi
	st=0; wait "$pid" || st=$?
	# the client of a killed server exits 74: that kill landed too
	if killed "$st" || ((victim == 1 && st != 0)); then
		record killed 1
	fi
	log "replicate: victim=$victim delay=${d}us status=$st"
	if [[ -d $rep/topics/$t ]]; then
		rc=0
		"$MQTOPIC" -s "$rep" verify "$t" >"$T/verify1.out" 2>&1 || rc=$?
		((rc == 0)) || violation "verify of the replica after the kill exited $rc: $(head -c 300 "$T/verify1.out")"
	fi
	rc=0
	"$MQREPL" "$S" "$rep" 2>>"$T/repl.err" || rc=$?
	((rc == 0)) || violation "mq-replicate after the kill exited $rc: $(tail -c 300 "$T/repl.err")"
	rc=0
	"$MQTOPIC" -s "$rep" verify "$t" >"$T/verify2.out" 2>&1 || rc=$?
	((rc == 0)) || violation "verify of the replica after resuming exited $rc: $(head -c 300 "$T/verify2.out")"
	for f in "$S"/topics/$t/*/*.log; do
		cmp -s "$f" "$rep/${f#"$S"/}" || violation "${f#"$S"/}: the replica's copy differs"
	done
	dump_topic "$t" "$T/before"
	((DUMP_RC == 0)) || violation "mq-recv $t exited $DUMP_RC"
	check_offsets "$T/before" "the source"
}

# ---- scenario 9: due scheduled messages, their mover killed ---------------

scn_delay_move() {
	local t=t n i k st d pid variant opts out sc= f l
	local variants=(recv gc send follow strace)
	variant=${variants[$(((TRIAL / ${#SCENARIOS[@]}) % 5))]}
	# strace: killed at the Nth unlinkat or fdatasync, the narrow spots
	# between a synced append and the removal of its scheduled file
	if [[ $variant == strace ]] && ! strace -f -qq -o /dev/null true 2>/dev/null; then
		variant=recv
	fi
	"$MQTOPIC" create -P 3 "$t" 2>>"$T/err" || violation "create $t exited $?"
	# 1-6 scheduled sends of 1-40 messages, keyed or round-robin
	rnd 6; n=$((R + 1))
	: >"$T/sched"
	for ((i = 1; i <= n; i++)); do
		rnd 40; k=$((R + 1))
		opts=()
		rnd 2; ((R == 0)) && opts+=(-k "key$i")
		seq -f "s$i-%g" 1 "$k" >>"$T/sched"
		seq -f "s$i-%g" 1 "$k" | "$MQSEND" "${opts[@]}" --delay 1s "$t" \
		    2>>"$T/err" || violation "scheduled send $i exited $?"
	done
	usleep_us 1100000	# all of them due now
	pick_delay_us 30; d=$R
	case $variant in
	recv)	"$MQRECV" "$t" >/dev/null 2>>"$T/err" & ;;
	gc)	"$MQTOPIC" gc "$t" 2>>"$T/err" & ;;
	send)	"$MQSEND" "$t" probe0 2>>"$T/err" & ;;
	follow)	"$MQRECV" -f "$t" >/dev/null 2>>"$T/err" & ;;
	strace)	local scs=(unlinkat fdatasync renameat renameat2 fsync)
		rnd 5; sc=${scs[R]}
		rnd 8
		MQ_IO=sync strace -f -qq -o /dev/null \
		    -e inject="$sc:signal=KILL:when=$((R + 1))" \
		    "$MQRECV" "$t" >/dev/null 2>>"$T/err" &
		d=0 ;;
	esac
	pid=$!
	if [[ $variant != strace ]]; then
		usleep_us "$d"
		kill -KILL "$pid" 2>/dev/null
	fi
	st=0; wait "$pid" || st=$?
	log "delay-move: variant=$variant${sc:+ $sc when=$((R + 1))} sends=$n messages=$(wc -l <"$T/sched") delay=${d}us status=$st"
	killed "$st" && record killed 1
	if ! killed "$st" && ((st != 0)); then
		violation "$variant exited $st: $(tail -c 200 "$T/err")"
	fi
	# the reader moves what is left, then everything is there once
	dump_topic "$t" "$T/before"
	((DUMP_RC == 0)) || violation "mq-recv $t exited $DUMP_RC after the crash: $(head -c 200 "$T/before.err")"
	check_offsets "$T/before" "after the crash"
	out=$(awk -v st="$st" -v var="$variant" '
		FILENAME == ARGV[1] { want[$1] = 1; next }
		$3 == "probe0" { probes++; next }
		!($3 in want) { print "unknown message at " $1 "/" $2 ": " $3; next }
		{ cnt[$3]++ }
		END {
			for (m in want)
				if (cnt[m] != 1) print m ": readable " cnt[m] + 0 " times"
			if (probes > 1 || (st == 0 && var == "send" && probes + 0 == 0))
				print "probe0 readable " probes + 0 " times"
		}' "$T/sched" "$T/before" | head -n 20)
	if [[ -n $out ]]; then
		while IFS= read -r l; do violation "$l"; done <<<"$out"
	fi
	n=$("$MQTOPIC" describe "$t" | awk '$1 == "scheduled" { print $2 }')
	[[ $n == 0 ]] || violation "describe: $n messages still scheduled after a read"
	record messages "$(wc -l <"$T/before")"
	check_recovery "$t" "$T/before"
}

# ---- scenario 10: a commit of transactions, its committer killed ----------

scn_txn_commit() {
	local t=t n i k st d pid variant out sc= tx txs=() passes=0 rc
	local variants=(delay strace)
	variant=${variants[$(((TRIAL / ${#SCENARIOS[@]}) % 2))]}
	if [[ $variant == strace ]] && ! strace -f -qq -o /dev/null true 2>/dev/null; then
		variant=delay
	fi
	"$MQTOPIC" create -P 3 "$t" 2>>"$T/err" || violation "create $t exited $?"
	"$MQSEND" "$t" before 2>>"$T/err" || violation "plain send exited $?"
	# 1-3 prepared transactions of 1-60 messages, keyed or round-robin
	rnd 3; n=$((R + 1))
	: >"$T/txn"
	for ((i = 1; i <= n; i++)); do
		rnd 60; k=$((R + 1))
		opts=()
		rnd 2; ((R == 0)) && opts+=(-k "key$i")
		seq -f "x$i-%g" 1 "$k" | sed "s/^/$k /" >>"$T/txn"
		tx=$(seq -f "x$i-%g" 1 "$k" | "$MQSEND" --prepare "${opts[@]}" "$t" \
		    2>>"$T/err") || violation "prepare $i exited $?"
		txs+=("$tx")
	done
	# a reader beside the committer: every pass sees each transaction
	# whole or not at all
	(
		i=0
		while [[ ! -e $T/stop ]]; do
			"$MQRECV" "$t" >"$T/pass.$i" 2>>"$T/pass.err" ||
				echo "pass $i: exit $?" >>"$T/pass.err"
			i=$((i + 1))
		done
	) &
	local rpid=$!
	# the committer: each transaction in turn; one of them is killed
	rnd "$n"; k=$R
	for ((i = 0; i < n; i++)); do
		if ((i != k)); then
			"$MQSEND" --commit "${txs[i]}" 2>>"$T/err" ||
				violation "commit ${txs[i]} exited $?"
			continue
		fi
		case $variant in
		delay)	pick_delay_us 20; d=$R
			"$MQSEND" --commit "${txs[i]}" 2>>"$T/err" &
			pid=$!
			usleep_us "$d"
			kill -KILL "$pid" 2>/dev/null ;;
		strace)	local scs=(pwrite64 fdatasync fsync renameat rename openat flock)
			rnd 7; sc=${scs[R]}
			rnd 10
			MQ_IO=sync strace -f -qq -o /dev/null \
			    -e inject="$sc:signal=KILL:when=$((R + 1))" \
			    "$MQSEND" --commit "${txs[i]}" 2>>"$T/err" &
			pid=$!; d=0 ;;
		esac
		st=0; wait "$pid" || st=$?
	done
	usleep_us 50000
	touch "$T/stop"
	wait "$rpid"
	log "txn-commit: variant=$variant${sc:+ $sc when=$((R + 1))} txns=$n killed=$((k + 1)) messages=$(wc -l <"$T/txn") delay=${d}us status=$st"
	killed "$st" && record killed 1
	if ! killed "$st" && ((st != 0)); then
		violation "the killed commit exited $st: $(tail -c 200 "$T/err")"
	fi
	[[ ! -s $T/pass.err ]] || violation "a reader beside the commit: $(head -c 200 "$T/pass.err")"
	# all or none, in every pass of the reader and in one right now
	"$MQRECV" "$t" >"$T/pass.now" 2>>"$T/err" || violation "mq-recv after the kill exited $?"
	for f in "$T"/pass.[0-9]* "$T/pass.now"; do
		passes=$((passes + 1))
		out=$(awk '
			FILENAME == ARGV[1] { split($2, a, "-"); size[a[1]] = $1; next }
			{ split($1, a, "-"); if (a[1] in size) cnt[a[1]]++ }
			END { for (x in cnt) if (cnt[x] != size[x])
				print x ": " cnt[x] " of " size[x] " visible" }' \
			"$T/txn" "$f" | head -n 5)
		[[ -z $out ]] || violation "${f##*/}: $out"
	done
	record passes "$passes"
	# recovery: the commit again, then everything once
	rc=0
	"$MQSEND" --commit "${txs[k]}" 2>>"$T/err" || rc=$?
	((rc == 0)) || violation "the commit again exited $rc: $(tail -c 200 "$T/err")"
	dump_topic "$t" "$T/before"
	((DUMP_RC == 0)) || violation "mq-recv $t exited $DUMP_RC after recovery"
	check_offsets "$T/before" "after recovery"
	out=$(awk '
		FILENAME == ARGV[1] { want[$2] = 1; next }
		$3 == "before" { b++; next }
		!($3 in want) { print "unknown message at " $1 "/" $2 ": " $3; next }
		{ cnt[$3]++ }
		END {
			for (m in want) if (cnt[m] != 1) print m ": readable " cnt[m] + 0 " times"
			if (b != 1) print "before readable " b + 0 " times"
		}' "$T/txn" "$T/before" | head -n 20)
	if [[ -n $out ]]; then
		while IFS= read -r l; do violation "$l"; done <<<"$out"
	fi
	n=$("$MQTOPIC" describe --json "$t" | jq '.transactions | length')
	[[ $n == 0 ]] || violation "describe: $n transactions still open"
	record messages "$(wc -l <"$T/before")"
	check_recovery "$t" "$T/before"
}

# compact-gc: mq-topic gc compacting a partition (cleanup.policy=compact)
# is killed at a random moment, or by strace at the Nth rename, unlink or
# fsync; the topic must read back whole (every message compaction must
# keep, once, at its offset, nothing that was never sent), verify, and
# the next gc must finish to exactly the compacted log
scn_compact_gc() {
	local t=t n i k st d pid variant sc= out active opts=()
	local variants=(kill kill strace)
	variant=${variants[$(((TRIAL / ${#SCENARIOS[@]}) % 3))]}
	if [[ $variant == strace ]] && ! strace -f -qq -o /dev/null true 2>/dev/null; then
		variant=kill
	fi
	rnd 2; ((R == 0)) && opts+=(--config compaction.map.bytes=1024)
	"$MQTOPIC" create --config cleanup.policy=compact --config segment.bytes=1024 \
	    --config min.cleanable.dirty.ratio=0 "${opts[@]}" "$t" 2>>"$T/err" ||
	    violation "create $t exited $?"
	# 30-80 single sends over 3-40 keys, some tombstones (not synced:
	# the sends are not what is tested, and a trial has 60 s)
	rnd 51; n=$((R + 30))
	rnd 38; k=$((R + 3))
	for ((i = 0; i < n; i++)); do
		rnd 10
		if ((R == 0)); then
			"$MQSEND" --no-sync -k "k$((i % k))" "$t" "" 2>>"$T/err"
		else
			"$MQSEND" --no-sync -k "k$((i % k))" "$t" "v$i" 2>>"$T/err"
		fi || violation "send $i exited $?"
	done
	"$MQRECV" -F '%o %k %s\n' "$t" >"$T/orig" 2>>"$T/err" || violation "mq-recv before gc exited $?"
	active=$(ls "$S/topics/$t/0" | grep '\.log$' | tail -n 1 | sed 's/\.log$//; s/^0*//')
	active=${active:-0}
	# what every gc must keep: the newest of each key; and what the
	# finished compaction leaves: that and the active segment
	awk '{ newest[$2] = $1 } END { for (k in newest) print newest[k] }' "$T/orig" | sort -n >"$T/keep"
	awk -v a="$active" 'FILENAME == ARGV[1] { keep[$1] = 1; next }
		($1 in keep) || $1 >= a' "$T/keep" "$T/orig" >"$T/want"
	pick_delay_us 20; d=$R
	case $variant in
	kill)	"$MQTOPIC" gc "$t" 2>>"$T/err" & ;;
	strace)	local scs=(renameat renameat2 fsync unlinkat openat)
		rnd 5; sc=${scs[R]}
		rnd 12
		MQ_IO=sync strace -f -qq -o /dev/null \
		    -e inject="$sc:signal=KILL:when=$((R + 1))" \
		    "$MQTOPIC" gc "$t" 2>>"$T/err" &
		d=0 ;;
	esac
	pid=$!
	if [[ $variant != strace ]]; then
		usleep_us "$d"
		kill -KILL "$pid" 2>/dev/null
	fi
	st=0; wait "$pid" || st=$?
	log "compact-gc: variant=$variant${sc:+ $sc when=$((R + 1))} messages=$n keys=$k active=$active delay=${d}us status=$st"
	killed "$st" && record killed 1
	if ! killed "$st" && ((st != 0)); then
		violation "gc exited $st: $(tail -c 200 "$T/err")"
	fi
	local rc=0
	"$MQTOPIC" verify "$t" >"$T/verify0.out" 2>&1 || rc=$?
	((rc == 0)) || violation "verify after the kill exited $rc: $(head -c 300 "$T/verify0.out")"
	rc=0
	"$MQRECV" -F '%o %k %s\n' "$t" >"$T/mid" 2>"$T/mid.err" || rc=$?
	((rc == 0)) || violation "mq-recv after the kill exited $rc: $(head -c 200 "$T/mid.err")"
	out=$(awk 'BEGIN { last = -1 }
		FILENAME == ARGV[1] { keep[$1] = 1; next }
		FILENAME == ARGV[2] { orig[$1] = $0; next }
		{ if (!($1 in orig) || orig[$1] != $0) print "not sent so: " $0
		  if ($1 + 0 <= last) print "offset " $1 " after " last
		  last = $1 + 0; seen[$1] = 1 }
		END { for (o in keep) if (!(o in seen)) print "kept message " o " missing" }' \
	    "$T/keep" "$T/orig" "$T/mid" | head -n 20)
	if [[ -n $out ]]; then
		while IFS= read -r l; do violation "after the kill: $l"; done <<<"$out"
	fi
	rc=0
	"$MQTOPIC" gc "$t" 2>>"$T/err" || rc=$?
	((rc == 0)) || violation "the next gc exited $rc: $(tail -c 200 "$T/err")"
	ls "$S/topics/$t/0" | grep -q compacting && violation "*.compacting left after the next gc"
	rc=0
	"$MQTOPIC" verify "$t" >"$T/verify1.out" 2>&1 || rc=$?
	((rc == 0)) || violation "verify after the next gc exited $rc: $(head -c 300 "$T/verify1.out")"
	"$MQRECV" -F '%o %k %s\n' "$t" >"$T/after" 2>>"$T/err" || violation "mq-recv after the next gc exited $?"
	cmp -s "$T/want" "$T/after" || violation "after the next gc: $(diff "$T/want" "$T/after" | head -n 5 | tr '\n' ' ')"
	record messages "$(wc -l <"$T/after")"
}

scenario send-stream scn_send_stream "one streaming producer into mq-send, killed"
scenario send-oneshot scn_send_oneshot "a loop of one-shot mq-send, one killed"
scenario send-concurrent scn_send_concurrent "four producers on 1 or 3 partitions, some killed"
scenario group-recv scn_group_recv "mq-recv -g (stdout, -f, -x, -x -f) killed, then a second run"
scenario topic-create scn_topic_create "create, auto-create, grow, delete killed"
scenario verify-repair scn_verify_repair "verify --repair of a damaged tail, killed"
scenario send-id scn_send_id "mq-send --id killed (strace at a system call, or a delay), retried"
scenario replicate scn_replicate "mq-replicate killed (client or server), then resumed"
scenario delay-move scn_delay_move "due scheduled messages, their mover (recv, gc, send, -f) killed"
scenario txn-commit scn_txn_commit "mq-send --commit killed (a delay, or strace at a call) beside a reader"
scenario compact-gc scn_compact_gc "mq-topic gc compacting a partition killed (at random, or at a rename, unlink or fsync)"

# ---- the driver -----------------------------------------------------------

usage() {
	sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 64
}

TRIALS=${CRASH_TRIALS:-1000}
ONLY=""
SEED=""
ONE_TRIAL=""
KEEP=0
VERBOSE=0
while (($#)); do
	case $1 in
	-n) TRIALS=$2; shift ;;
	-s) ONLY=$2; shift ;;
	--seed) SEED=$2; shift ;;
	--trial) ONE_TRIAL=$2; shift ;;
	-k) KEEP=1 ;;
	-v) VERBOSE=1 ;;
	-l) for s in "${SCENARIOS[@]}"; do printf '%-16s %s\n' "$s" "${SCN_DESC[$s]}"; done; exit 0 ;;
	-h | --help) usage ;;
	*) usage ;;
	esac
	shift
done
if [[ -n $ONLY ]]; then
	IFS=, read -r -a want <<<"$ONLY"
	for s in "${want[@]}"; do
		[[ -n ${SCN_FUNC[$s]-} ]] || { echo "crash.sh: no scenario $s (-l lists them)" >&2; exit 64; }
	done
	SCENARIOS=("${want[@]}")
fi
[[ $TRIALS =~ ^[0-9]+$ ]] || usage
SEED=${SEED:-$(($(date +%s%N) / 1000 % 1000000007))}

for b in mq-send mq-recv mq-topic; do
	if [[ ! -x $MQ_BINDIR/$b ]]; then
		echo "Bail out! $MQ_BINDIR/$b: not built (set MQ_BINDIR or run make)"
		exit 1
	fi
done
command -v python3 >/dev/null || { echo "Bail out! python3 is needed"; exit 1; }

RUN=$(mktemp -d "${TMPDIR:-/tmp}/mq-crash.XXXXXX") || exit 1
BIN=$RUN/bin
MQSEND=$BIN/mq-send
MQRECV=$BIN/mq-recv
MQTOPIC=$BIN/mq-topic
MQREPL=$BIN/mq-replicate
mkdir -p "$BIN" "$RUN/failed"
cp "$MQ_BINDIR/mq-send" "$MQ_BINDIR/mq-recv" "$MQ_BINDIR/mq-topic" "$BIN/" || exit 1
if [[ -x $MQ_BINDIR/mq-replicate ]]; then
	cp "$MQ_BINDIR/mq-replicate" "$BIN/" || exit 1
fi
export BIN RUN MQSEND MQRECV MQTOPIC MQREPL

declare -A N_TRIALS=() N_VIOL=() N_KILLED=() MAX_DUPS=() N_TORN=()
for s in "${SCENARIOS[@]}"; do
	N_TRIALS[$s]=0 N_VIOL[$s]=0 N_KILLED[$s]=0 MAX_DUPS[$s]=0 N_TORN[$s]=0
done

GROUP_TEMPLATE=$RUN/group-template
case " ${SCENARIOS[*]} " in
*" group-recv "*)
	if ! seed_groups "$GROUP_TEMPLATE" >"$RUN/seed.log" 2>&1; then
		echo "Bail out! cannot build the group-recv template spool: $(tail -n 3 "$RUN/seed.log")"
		exit 1
	fi ;;
esac

echo "# mq crash harness: $TRIALS trials over ${#SCENARIOS[@]} scenarios (${SCENARIOS[*]}), seed $SEED"
echo "# binaries: $MQ_BINDIR (copied to $BIN); run directory: $RUN"

# run_trial I: trial I of the run, of scenario I mod #scenarios
run_trial() {
	local i=$1 name=${SCENARIOS[$(($1 % ${#SCENARIOS[@]}))]}
	local T=$RUN/t$i-$name
	mkdir -p "$T/home"
	: >"$T/trial.log"
	(
		export T S=$T/spool TRIAL=$i CRASH_TAG="mq-crash-$$-$i"
		export MQ_SPOOL=$S HOME=$T/home
		unset XDG_STATE_HOME
		cd "$T" || exit 1
		mkfifo "$T/.sleep" && exec 9<>"$T/.sleep"
		RANDOM=$(((SEED + i * 7919) % 32768))
		exec </dev/null
		"${SCN_FUNC[$name]}"
		reap_tagged 500
	) >>"$T/trial.log" 2>&1 &
	local tp=$! sp done
	sleep "$CRASH_TRIAL_TIMEOUT" &
	sp=$!
	wait -n -p done "$tp" "$sp"
	if [[ $done == "$sp" ]]; then
		kill -KILL "$tp" 2>/dev/null
		echo "trial did not end within ${CRASH_TRIAL_TIMEOUT}s (a hang): $(ps -o pid=,args= $(env -u CRASH_TAG grep -lsxzaF "CRASH_TAG=mq-crash-$$-$i" /proc/[0-9]*/environ 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p') 2>/dev/null | head -n 5 | tr '\n' ';')" >>"$T/violations"
	else
		kill "$sp" 2>/dev/null
		wait "$sp" 2>/dev/null
	fi
	# whatever the trial left running goes now
	local pids
	pids=$(env -u CRASH_TAG grep -lsxzaF "CRASH_TAG=mq-crash-$$-$i" /proc/[0-9]*/environ 2>/dev/null |
		sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p')
	[[ -n $pids ]] && kill -KILL $pids 2>/dev/null
	wait "$tp" 2>/dev/null

	N_TRIALS[$name]=$((N_TRIALS[$name] + 1))
	if [[ -f $T/stats ]]; then
		local k v
		while read -r k v; do
			case $k in
			killed) N_KILLED[$name]=$((N_KILLED[$name] + v)) ;;
			torn_tail) N_TORN[$name]=$((N_TORN[$name] + v)) ;;
			dups) ((v > MAX_DUPS[$name])) && MAX_DUPS[$name]=$v ;;
			esac
		done <"$T/stats"
	fi
	((VERBOSE)) && sed "s/^/# [$i $name] /" "$T/trial.log"
	if [[ -s $T/violations ]]; then
		N_VIOL[$name]=$((N_VIOL[$name] + 1))
		sed "s/^/# VIOLATION [trial $i $name] /" "$T/violations" | head -n 10
		echo "# replay: MQ_BINDIR=$MQ_BINDIR $0 -n $TRIALS${ONLY:+ -s $ONLY} --seed $SEED --trial $i   (kept: $RUN/failed/${T##*/})"
		mv "$T" "$RUN/failed/"
	elif ((!KEEP)); then
		rm -rf "$T"
	fi
}

start=$SECONDS
if [[ -n $ONE_TRIAL ]]; then
	run_trial "$ONE_TRIAL"
else
	for ((i = 0; i < TRIALS; i++)); do
		run_trial "$i"
		if (((i + 1) % 100 == 0)); then
			echo "# $((i + 1))/$TRIALS trials, $((SECONDS - start)) s"
		fi
	done
fi

# ---- the summary ----------------------------------------------------------

echo "1..${#SCENARIOS[@]}"
total_viol=0
k=0
for s in "${SCENARIOS[@]}"; do
	k=$((k + 1))
	total_viol=$((total_viol + N_VIOL[$s]))
	if ((N_VIOL[$s] == 0)); then
		echo "ok $k - $s: ${N_TRIALS[$s]} trials, 0 violations"
	else
		echo "not ok $k - $s: ${N_TRIALS[$s]} trials, ${N_VIOL[$s]} violations"
	fi
done
echo "#"
printf '# %-16s %7s %10s %7s %7s %9s\n' SCENARIO TRIALS VIOLATIONS KILLED TORN MAX_DUPS
for s in "${SCENARIOS[@]}"; do
	printf '# %-16s %7d %10d %7d %7d %9d\n' "$s" "${N_TRIALS[$s]}" "${N_VIOL[$s]}" \
	    "${N_KILLED[$s]}" "${N_TORN[$s]}" "${MAX_DUPS[$s]}"
done
echo "# KILLED: trials where a SIGKILL hit a live process; TORN: trials with a torn tail left"
echo "# $((SECONDS - start)) s, seed $SEED"
if ((total_viol == 0)); then
	((KEEP)) || rm -rf "$RUN"
	exit 0
fi
echo "# failed trials kept in $RUN/failed"
exit 1
