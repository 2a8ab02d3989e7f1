#!/usr/bin/env bats
# every flag in its four places (code, --help, man page, completions), and
# the bash completion run through its own functions

load helpers

# longopts PROG: the long options its --help names (mq-topic: of every command)
longopts() {
	"$1" --help | grep -o -- '--[a-z][a-z-]*' | sort -u
}

@test "every long option of --help is in the man page and in all three completions" {
	local p o missing=()
	for p in mq-send mq-recv mq-topic mq-replicate; do
		for o in $(longopts "$p"); do
			grep -q -- "Fl ${o#-}" "$MQ_REPO/man/$p.1" ||
				missing+=("$p $o: man page")
			grep -q -- "$o" "$MQ_REPO/completions/mq.bash" ||
				missing+=("$p $o: mq.bash")
			grep -q -- "$o" "$MQ_REPO/completions/_mq" ||
				missing+=("$p $o: _mq")
			grep -q -- "-l ${o#--}" "$MQ_REPO/completions/mq.fish" ||
				missing+=("$p $o: mq.fish")
		done
	done
	if ((${#missing[@]})); then
		printf '%s\n' "${missing[@]}" >&2
		false
	fi
}

# complete WORDS...: COMPREPLY for the line "WORDS..." (the last word is
# the one completed), through the bash completion functions
complete_line() {
	local prog=$1
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	read -ra COMP_WORDS <<<"$COMP_LINE"
	[[ $COMP_LINE == *" " ]] && COMP_WORDS+=("")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMPREPLY=()
	case $prog in
	mq-send) _mq_send ;;
	mq-recv) _mq_recv ;;
	mq-topic) _mq_topic ;;
	esac
	printf '%s\n' "${COMPREPLY[@]}"
}

@test "bash: options, topics, and the word after an option that takes one" {
	run mq-topic create -P 2 jobs
	run mq-topic create orders
	source "$MQ_REPO/completions/mq.bash"
	run complete_line mq-send "jo"
	expect_output "jobs"
	# --id takes an argument: the word after it is the topic
	run complete_line mq-send --id x "or"
	expect_output "orders"
	run complete_line mq-recv --exec-timeout 1s "jo"
	expect_output "jobs"
	run complete_line mq-recv "--exec-t"
	expect_output "--exec-timeout="
	run complete_line mq-topic create "--if"
	expect_output "--if-not-exists"
	run complete_line mq-topic delete "--f"
	expect_output "--force"
	run complete_line mq-topic describe "o"
	expect_output "orders"
}

@test "fish and zsh: the completion files load in their shells" {
	local ran=0
	if command -v fish >/dev/null; then
		run fish -c "source '$MQ_REPO/completions/mq.fish'; complete -C 'mq-send --no-c'"
		expect_status 0
		expect_contains "--no-create"
		ran=1
	fi
	if command -v zsh >/dev/null; then
		run zsh -fc "autoload -Uz compinit; compinit -u; source '$MQ_REPO/completions/_mq'"
		expect_status 0
		ran=1
	fi
	((ran)) || skip "neither fish nor zsh is installed"
}
