#!/usr/bin/env bats
# 86-replicate-ssh: mq-replicate over real OpenSSH - an sshd of our own on
# 127.0.0.1 and a free high port, with host and client keys generated
# into a temporary directory, stopped by its pid at the end

load helpers

setup_file() {
	export SSHD_DIR
	SSHD_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mq-sshd.XXXXXX")
	if [[ $(id -u) != 0 || ! -x /usr/sbin/sshd ]]; then
		echo "needs root and /usr/sbin/sshd (scripts/deps.sh installs openssh-server)" >"$SSHD_DIR/skip"
		return 0
	fi
	ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/host" </dev/null
	ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/client" </dev/null
	cp "$SSHD_DIR/client.pub" "$SSHD_DIR/authorized_keys"
	mkdir -p /run/sshd
	local port i
	for ((i = 0; i < 20; i++)); do
		port=$((20000 + RANDOM % 40000))
		cat >"$SSHD_DIR/config" <<-EOF
		Port $port
		ListenAddress 127.0.0.1
		HostKey $SSHD_DIR/host
		AuthorizedKeysFile $SSHD_DIR/authorized_keys
		StrictModes no
		PermitRootLogin yes
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		UsePAM no
		PidFile $SSHD_DIR/sshd.pid
		EOF
		/usr/sbin/sshd -D -e -f "$SSHD_DIR/config" 2>>"$SSHD_DIR/log" 3>&- &
		echo $! >"$SSHD_DIR/pid"
		export SSHD_PORT=$port
		local j
		for ((j = 0; j < 50; j++)); do
			if ssh -p "$port" -i "$SSHD_DIR/client" -o StrictHostKeyChecking=no \
			    -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR \
			    127.0.0.1 true 2>/dev/null </dev/null; then
				return 0
			fi
			kill -0 "$(cat "$SSHD_DIR/pid")" 2>/dev/null || break
			sleep 0.1
		done
		kill "$(cat "$SSHD_DIR/pid")" 2>/dev/null || true
		wait "$(cat "$SSHD_DIR/pid")" 2>/dev/null || true
	done
	echo "sshd did not start: $(tail -3 "$SSHD_DIR/log")" >"$SSHD_DIR/skip"
}

teardown_file() {
	if [[ -f $SSHD_DIR/pid ]]; then
		kill "$(cat "$SSHD_DIR/pid")" 2>/dev/null || true
	fi
	rm -rf "$SSHD_DIR"
}

setup() {
	mq_setup
	if [[ -f $SSHD_DIR/skip ]]; then
		# not counted as passing: run.sh counts skips apart
		skip "$(cat "$SSHD_DIR/skip")"
	fi
	T=$BATS_TEST_TMPDIR
	A=$T/a
	B=$T/b
	R=$MQ_BINDIR/mq-replicate
	SSH="ssh -p $SSHD_PORT -i $SSHD_DIR/client -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR"
	E=(-e "$SSH" --remote-path "$R")
}

@test "ssh: push, then pull, byte for byte; an incremental push" {
	seq 5000 | mq-send -s "$A" -k k t
	run "$R" "${E[@]}" "$A" "root@127.0.0.1:$B"
	expect_status 0
	run "$R" "${E[@]}" "127.0.0.1:$A" "$T/c"
	expect_status 0
	local f
	for f in "$A"/topics/t/0/*.log; do
		expect_same_file "$B/${f#"$A"/}" "$f"
		expect_same_file "$T/c/${f#"$A"/}" "$f"
	done
	seq 10 | mq-send -s "$A" t
	run "$R" -v "${E[@]}" "$A" "127.0.0.1:$B"
	expect_status 0
	run mq-recv -s "$B" -o 5000 t
	expect_output "$(seq 10)"
	run mq-topic -s "$B" verify
	expect_status 0
}

@test "ssh: --follow picks up messages, and reconnects after the ssh pipe dies" {
	mq-send -s "$A" t one
	bg "$T/f.out" "$T/f.err" "$R" "${E[@]}" --follow "127.0.0.1:$A" "$B"
	local fp=$BG_PID
	run mq-send -s "$A" --replicas 1 --timeout 20s t two
	expect_status 0
	# kill the ssh client under the follower: it must come back
	local kids
	kids=$(pgrep -P "$fp" || true)
	[[ -n $kids ]]
	kill -KILL $kids
	mq-send -s "$A" t three
	wait_until 20 bash -c "mq-recv -s '$B' t | grep -q three"
	run cat "$T/f.err"
	expect_contains "reconnecting"
	stop_bg "$fp"
}

@test "ssh: an authorized_keys command= read-only server serves pulls only" {
	mq-send -s "$A" t one
	cp "$SSHD_DIR/authorized_keys" "$SSHD_DIR/authorized_keys.save"
	sed "s|^|command=\"$R --server --read-only $A\" |" \
	    "$SSHD_DIR/authorized_keys.save" >"$SSHD_DIR/authorized_keys"
	run "$R" "${E[@]}" "127.0.0.1:$A" "$B"
	local pull=$status
	mq-send -s "$T/c" t intruder
	run "$R" "${E[@]}" "$T/c" "127.0.0.1:$A"
	local push=$status out=$output
	run "$R" "${E[@]}" "127.0.0.1:/etc" "$T/d"
	local other=$status
	cp "$SSHD_DIR/authorized_keys.save" "$SSHD_DIR/authorized_keys"
	expect_eq "$pull" 0 "pull"
	expect_eq "$push" 77 "push"
	[[ $out == *read-only* ]]
	expect_eq "$other" 77 "a path outside"
	run mq-recv -s "$A" t
	expect_output "one"
}
