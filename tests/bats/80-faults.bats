#!/usr/bin/env bats
# 80-faults: full disks, failing writes and syncs, read-only spools,
# permissions and hostile input.  Mounts and other users need root; CI
# runs as root, elsewhere those tests are skipped (and counted so).

load helpers

setup() {
	mq_setup
	T=$BATS_TEST_TMPDIR
	MOUNTS=()
	CLEAN=()
}

teardown() {
	mq_teardown
	local m
	for m in "${MOUNTS[@]}"; do
		[[ -n $m ]] && umount -l "$m" 2>/dev/null || true
	done
	for m in "${CLEAN[@]}"; do
		rm -rf "$m"
	done
}

# small_fs DIR KIB: a tmpfs of KIB KiB at DIR (skips when it cannot)
small_fs() {
	[[ $(id -u) -eq 0 ]] || skip "needs root to mount a tmpfs"
	mkdir -p "$1"
	mount -t tmpfs -o "size=${2}k" tmpfs "$1" 2>/dev/null || skip "cannot mount a tmpfs here"
	MOUNTS+=("$1")
}

# as_user USER CMD...: run as an unprivileged user, in its own group
as_user() {
	local user=$1
	shift
	setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups -- "$@"
}

# open_spool: a spool where other users can reach it (bats' own temporary
# directories are private to root)
open_spool() {
	OPEN=$(mktemp -d /tmp/mq-faults.XXXXXX)
	chmod 755 "$OPEN"
	CLEAN+=("$OPEN")
	export MQ_SPOOL="$OPEN/spool"
}

need_setpriv() {
	[[ $(id -u) -eq 0 ]] || skip "needs root to switch users"
	command -v setpriv >/dev/null || skip "setpriv not installed"
}

# ---- disk full -----------------------------------------------------------

@test "disk full: exit 74 with ENOSPC, a clean prefix stored, works again once space is freed" {
	small_fs "$T/fs" 1024
	export MQ_SPOOL="$T/fs/spool"
	run mq-send t first
	expect_status 0
	head -c 300000 /dev/zero > "$T/fs/filler"
	run bash -c 'seq 1000000 | mq-send t'
	expect_status 74
	expect_contains "No space left on device"
	# what is stored is whole and in order
	run mq-recv t
	expect_status 0
	[[ ${lines[0]} == first ]]
	mq-recv -o 1 t > "$T/got"
	cmp "$T/got" <(seq "$(wc -l < "$T/got")")
	run mq-topic verify t
	expect_status 0
	rm "$T/fs/filler"
	run mq-send t again
	expect_status 0
	run bash -c 'mq-recv -o -1 t'
	expect_output again
}

@test "disk full while creating a topic: 74, and no half topic left" {
	small_fs "$T/fs" 64
	export MQ_SPOOL="$T/fs/spool"
	run mq-send seed x
	head -c 10000000 /dev/zero > "$T/fs/filler" 2>/dev/null || true
	run mq-topic create -P 64 big
	[[ $status -eq 74 ]] || { echo "status $status: $output" >&2; false; }
	expect_contains "No space left on device"
	run mq-topic list
	expect_output seed
	rm "$T/fs/filler"
	run mq-topic create -P 64 big
	expect_status 0
	run mq-topic verify big
	expect_status 0
}

@test "disk full when a group commits: 74, the message is delivered again later" {
	small_fs "$T/fs" 1024
	export MQ_SPOOL="$T/fs/spool"
	run mq-send t m1 m2
	head -c 10000000 /dev/zero > "$T/fs/filler" 2>/dev/null || true
	run mq-recv -g g t
	[[ $status -eq 74 ]] || { echo "status $status: $output" >&2; false; }
	rm "$T/fs/filler"
	run mq-recv -g g t
	expect_status 0
	expect_output $'m1\nm2'
}

# ---- failing writes and syncs ---------------------------------------------

@test "EIO from fdatasync (strace inject, sync engine): exit 74, never 0" {
	need_strace
	run mq-send t before
	MQ_IO=sync run strace -f -o /dev/null -e trace=fdatasync -e inject=fdatasync:error=EIO \
	    mq-send t after
	expect_status 74
	expect_contains "Input/output error"
	# a sync that failed is not tried again and called a success
	MQ_IO=sync run strace -f -o "$T/tr" -e trace=fdatasync -e inject=fdatasync:error=EIO \
	    mq-send t again
	expect_status 74
	[[ $(grep -c 'fdatasync(' "$T/tr") -eq 1 ]] || { cat "$T/tr" >&2; false; }
}

@test "EIO from pwrite (strace inject): exit 74, the partial batch is cut, the spool stays clean" {
	need_strace
	run mq-send t before
	MQ_IO=sync run strace -f -o /dev/null -e trace=pwrite64 -e inject=pwrite64:error=EIO:when=1 \
	    mq-send t lost
	expect_status 74
	run mq-send t after
	expect_status 0
	run mq-recv t
	expect_output $'before\nafter'
	run mq-topic verify t
	expect_status 0
}

@test "the test hook MQ_FAULT fails writes and syncs on both engines (ASan build)" {
	[[ -x $MQ_REPO/bin-asan/mq-send ]] || skip "bin-asan not built (make asan)"
	local io
	for io in sync uring; do
		rm -rf "$MQ_SPOOL"
		MQ_IO=$io run "$MQ_REPO/bin-asan/mq-send" t before
		expect_status 0
		MQ_IO=$io MQ_FAULT=fsync:1 run "$MQ_REPO/bin-asan/mq-send" t unsynced
		expect_status 74
		MQ_IO=$io MQ_FAULT=write:1 run "$MQ_REPO/bin-asan/mq-send" t unwritten
		expect_status 74
		MQ_IO=$io run "$MQ_REPO/bin-asan/mq-send" t after
		expect_status 0
		run mq-recv t
		expect_status 0
		[[ $output != *unwritten* ]]
		[[ ${lines[0]} == before && ${lines[-1]} == after ]]
		run mq-topic verify t
		expect_status 0
	done
}

# ---- read-only ------------------------------------------------------------

@test "a read-only file system: writers exit 77 naming the cause, readers still read" {
	small_fs "$T/fs" 1024
	export MQ_SPOOL="$T/fs/spool"
	run mq-send t m
	mount -o remount,ro "$T/fs" || skip "cannot remount read-only"
	run mq-send t n
	expect_status 77
	expect_contains "Read-only file system"
	run mq-recv t
	expect_status 0
	expect_output m
	run mq-topic create u
	expect_status 77
}

@test "a spool the user may not write: 77 Permission denied" {
	need_setpriv
	open_spool
	run mq-send t m
	chmod -R a+rX "$MQ_SPOOL"
	run as_user nobody env MQ_SPOOL="$MQ_SPOOL" "$MQ_BINDIR/mq-send" t n
	expect_status 77
	expect_contains "Permission denied"
	run as_user nobody env MQ_SPOOL="$MQ_SPOOL" "$MQ_BINDIR/mq-recv" t
	expect_status 0
	expect_output m
}

# ---- permissions -----------------------------------------------------------

@test "files honour the umask" {
	(umask 027 && mq-send t m && mq-recv -g g t > /dev/null)
	local bad
	bad=$(find "$MQ_SPOOL" -perm /o+rwx)
	[[ -z $bad ]] || { echo "world bits despite umask 027: $bad" >&2; false; }
	bad=$(find "$MQ_SPOOL" -type f -perm /g+w)
	[[ -z $bad ]] || { echo "group-writable despite umask 027: $bad" >&2; false; }
}

@test "no file is ever created world-writable, even with umask 000" {
	(umask 000 && mq-send t m && mq-topic create -P 2 u && mq-recv -g g t > /dev/null)
	local bad
	bad=$(find "$MQ_SPOOL" -perm -o+w)
	[[ -z $bad ]] || { echo "world-writable: $bad" >&2; false; }
}

@test "a spool shared by a group through a setgid directory; outsiders get 77" {
	need_setpriv
	getent group mqshare >/dev/null || groupadd mqshare || skip "cannot add a group"
	id mqa >/dev/null 2>&1 || useradd -M -N -g mqshare mqa || skip "cannot add a user"
	id mqb >/dev/null 2>&1 || useradd -M -N -g mqshare mqb || skip "cannot add a user"
	open_spool
	mkdir "$MQ_SPOOL"
	chgrp mqshare "$MQ_SPOOL"
	chmod 2775 "$MQ_SPOOL"
	sh_as() {
		local user=$1
		shift
		setpriv --reuid="$user" --regid=mqshare --init-groups -- \
		    sh -c "umask 002; MQ_SPOOL='$MQ_SPOOL'; export MQ_SPOOL; $*"
	}
	run sh_as mqa "'$MQ_BINDIR/mq-send' jobs from-a"
	expect_status 0
	run sh_as mqb "'$MQ_BINDIR/mq-send' jobs from-b"
	expect_status 0
	run sh_as mqb "'$MQ_BINDIR/mq-recv' -g workers jobs"
	expect_status 0
	expect_output $'from-a\nfrom-b'
	# every file belongs to the group
	local stray
	stray=$(find "$MQ_SPOOL" ! -group mqshare)
	[[ -z $stray ]] || { echo "not in group mqshare: $stray" >&2; false; }
	# someone outside the group can neither write nor read
	chmod -R o-rwx "$MQ_SPOOL"
	run as_user nobody env MQ_SPOOL="$MQ_SPOOL" "$MQ_BINDIR/mq-send" jobs x
	expect_status 77
	run as_user nobody env MQ_SPOOL="$MQ_SPOOL" "$MQ_BINDIR/mq-recv" jobs
	expect_status 77
}

# ---- hostile input ---------------------------------------------------------

@test "nonsense values for every numeric flag exit 64" {
	run mq-send t m
	local args
	for args in "-c x" "-c -1" "-c 99999999999999999999" "-p -1" "-p 1e3" "-o later" \
	    "-o @yesterday" "-u beginning" "--timeout -5" "--timeout 5x" "--rate 0" \
	    "--rate 5/w" "-j 0" "-j 99999" "--retries -1" "-g a/b" "-D \\q"; do
		# shellcheck disable=SC2086
		run mq-recv $args t
		[[ $status -eq 64 ]] || { echo "mq-recv $args: status $status: $output" >&2; false; }
	done
	for args in "-p -1" "-p x" "--sync-interval 1x" "--sync-interval -1" "-z gzip" \
	    "-z zlib:10" "-H novalue" "-D ''" "-K ''"; do
		# shellcheck disable=SC2086
		eval "run mq-send $args t m"
		[[ $status -eq 64 ]] || { echo "mq-send $args: status $status: $output" >&2; false; }
	done
	for args in "create -P 0 u" "create -P 99999 u" "create --config nokey=1 u" \
	    "create --config segment.bytes=1 u" "config t partitions=0" "config t bogus" \
	    "reset g t --to -3" "reset g t"; do
		# shellcheck disable=SC2086
		run mq-topic $args
		[[ $status -eq 64 ]] || { echo "mq-topic $args: status $status: $output" >&2; false; }
	done
}

@test "topic names that try to leave the spool are refused before anything is touched" {
	mkdir "$T/outside"
	local n
	for n in "../outside" "../../x" "a/../../b" "/etc" "." ".." "topics/../x"; do
		run mq-send "$n" m
		expect_status 64
		run mq-topic create "$n"
		expect_status 64
	done
	[[ -z $(ls -A "$T/outside") ]]
}

@test "a symlink planted in the spool is not followed for writing" {
	run mq-send t m
	mkdir "$T/outside"
	ln -s "$T/outside" "$MQ_SPOOL/topics/evil"
	run mq-send evil m
	[[ $status -ne 0 ]]
	[[ -z $(ls -A "$T/outside") ]]
	# nor is a segment that is a link
	local seg="$MQ_SPOOL/topics/t/0/00000000000000000000.log"
	mv "$seg" "$T/real.log"
	ln -s "$T/real.log" "$seg"
	local before
	before=$(stat -c %s "$T/real.log")
	run mq-send t n
	[[ $status -ne 0 ]]
	[[ $(stat -c %s "$T/real.log") -eq $before ]]
}

@test "a spool path that is a file: 66 for readers and writers, file untouched" {
	echo data > "$T/file"
	run mq-send -s "$T/file" t m
	expect_status 66
	run mq-recv -s "$T/file" t
	expect_status 66
	run mq-topic -s "$T/file" list
	expect_status 66
	[[ $(cat "$T/file") == data ]]
}

@test "stdin that is a directory or closed, stdout closed: a clear error, nothing stored" {
	run bash -c 'mq-send t < /'
	expect_status 74
	expect_contains "Is a directory"
	run bash -c 'mq-send t <&-'
	expect_status 66
	expect_contains "stdin"
	run mq-topic list
	expect_output t
	run bash -c 'mq-recv -c 0 t; mq-recv t >&-'
	expect_status 74
	expect_contains "stdout"
}

# ---- read-only users (issue 8 finding 8, issue 12 item 5) -----------------

@test "mq-recv -g by a user who may not write: 77 Permission denied, not a missing partition" {
	need_setpriv
	open_spool
	run -0 mq-send t m
	chmod -R a+rX "$MQ_SPOOL"
	run as_user nobody env MQ_SPOOL="$MQ_SPOOL" "$MQ_BINDIR/mq-recv" -g g t
	expect_status 77
	expect_contains "Permission denied"
	expect_not_contains "No such partition"
}

@test "mq-topic verify by a user who may only read: works, changes nothing" {
	need_setpriv
	open_spool
	run -0 mq-send t m
	run -0 mq-recv -g g t
	chmod -R a+rX,go-w "$MQ_SPOOL"
	local before after
	before=$(find "$MQ_SPOOL" -printf '%p %s %T@\n' | sort)
	run as_user nobody env MQ_SPOOL="$MQ_SPOOL" "$MQ_BINDIR/mq-topic" verify t
	expect_status 0
	run as_user nobody env MQ_SPOOL="$MQ_SPOOL" "$MQ_BINDIR/mq-topic" verify
	expect_status 0
	after=$(find "$MQ_SPOOL" -printf '%p %s %T@\n' | sort)
	[[ $before == "$after" ]] || { diff <(echo "$before") <(echo "$after") >&2; false; }
}

# ---- failed syncs of state files reach the exit status (issue 7 §4) -------

@test "a failed sync of a group's commits at exit: 74, not success" {
	need_strace
	run -0 mq-send t a
	export MQ_IO=sync
	run strace -f -qq -o /dev/null -e inject=fdatasync:error=EIO mq-recv -g g t
	expect_status 74
	expect_contains "Input/output error"
}

@test "a failed sync of a send ID marker or of a new groups/ directory: 74" {
	need_strace
	run strace -f -qq -o /dev/null -e inject=fsync:error=EIO mq-send --id x t a
	expect_status 74
	run -0 mq-send u a
	# the first sync is that of the topic directory, for the new groups/
	run strace -f -qq -o /dev/null -e inject=fsync:error=EIO:when=1 mq-recv -g g u
	expect_status 74
}
