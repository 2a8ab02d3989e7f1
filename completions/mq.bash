# bash completion for mq-send, mq-recv, mq-topic, mq-replicate           -*- sh -*-
#
# Install as /usr/share/bash-completion/completions/mq-send (with
# symlinks mq-recv and mq-topic), or source it from ~/.bashrc.
#
# Topic names are completed by listing SPOOL/topics/, and consumer group
# names by listing SPOOL/topics/TOPIC/groups/ when TOPIC is on the line,
# never by running a binary.  SPOOL is the -s/--spool given earlier on the line, else
# $MQ_SPOOL, else ${XDG_STATE_HOME:-$HOME/.local/state}/mq.
#
# Words are split on blanks only: quoted arguments with blanks in them
# are not understood, which topic names and options never need.

# _mq_words: set _mq_w to the words of the line up to the cursor, the
# last one being the (possibly empty) word under completion.
_mq_words()
{
	local line=${COMP_LINE:0:COMP_POINT}

	read -ra _mq_w <<<"$line"
	if [[ -z $line || $line == *[[:blank:]] ]]; then
		_mq_w+=("")
	fi
}

# _mq_reply WORD...: offer the words matching the word under completion,
# less the part readline keeps because of COMP_WORDBREAKS (= and :).
_mq_reply()
{
	local cur=${_mq_w[-1]} pre="" brk="" c

	[[ $COMP_WORDBREAKS == *=* ]] && brk+="="
	[[ $COMP_WORDBREAKS == *:* ]] && brk+=":"
	if [[ -n $brk && $cur == *["$brk"]* ]]; then
		pre=${cur%"${cur##*["$brk"]}"}
	fi
	COMPREPLY=()
	for c in "$@"; do
		[[ $c == "$cur"* ]] && COMPREPLY+=("${c#"$pre"}")
	done
}

# _mq_dirs: complete directory names for -s.
_mq_dirs()
{
	local cur=${COMP_WORDS[COMP_CWORD]}

	[[ $cur == = ]] && cur=""
	compopt -o filenames 2>/dev/null
	mapfile -t COMPREPLY < <(compgen -d -- "$cur")
}

# _mq_spool: print the spool the command line would use.
_mq_spool()
{
	local i w n=$((${#_mq_w[@]} - 1)) spool=""

	for ((i = 1; i < n; i++)); do
		w=${_mq_w[i]}
		case $w in
		--)		break ;;
		--spool=*)	spool=${w#--spool=} ;;
		--spool)	((i + 1 < n)) && spool=${_mq_w[i + 1]} ;;
		--*)		;;
		*)
			if [[ $w =~ ^-[0fJlqv]*s$ ]]; then
				((i + 1 < n)) && spool=${_mq_w[i + 1]}
			elif [[ $w =~ ^-[0fJlqv]*s(.+)$ ]]; then
				spool=${BASH_REMATCH[1]}
			fi ;;
		esac
	done
	spool=${spool:-${MQ_SPOOL:-${XDG_STATE_HOME:-$HOME/.local/state}/mq}}
	printf '%s\n' "${spool/#\~/$HOME}"
}

# _mq_subdirs DIR PREFIX: offer the names of the directories in DIR,
# PREFIX before each.
_mq_subdirs()
{
	local d names=()

	for d in "$1"/* "$1"/.[!.]* "$1"/..?*; do
		[[ -d $d ]] && names+=("$2${d##*/}")
	done
	_mq_reply "${names[@]}"
}

# _mq_topics [PREFIX]: offer the topic names found in the spool.
_mq_topics()
{
	_mq_subdirs "$(_mq_spool)/topics" "$1"
}

# _mq_cmds: offer command names and files, for -x.
_mq_cmds()
{
	local cur=${_mq_w[-1]}

	compopt -o filenames 2>/dev/null
	mapfile -t COMPREPLY < <(compgen -c -f -- "$cur")
}

# _mq_args ARGOPTS: set _mq_pos to the non-option words before the word
# under completion, and _mq_prev to the option whose argument is being
# completed, if any.  ARGOPTS lists the options that take an argument,
# blank-separated, e.g. "-D -k --key --spool".
_mq_args()
{
	local takes=" $1 " i j w n=$((${#_mq_w[@]} - 1)) ddash=0

	_mq_pos=() _mq_prev=""
	for ((i = 1; i < n; i++)); do
		w=${_mq_w[i]}
		_mq_prev=""
		if ((ddash)) || [[ $w != -?* ]]; then
			_mq_pos+=("$w")
		elif [[ $w == -- ]]; then
			ddash=1
		elif [[ $w == --*=* ]]; then
			:
		elif [[ $w == --* ]]; then
			[[ $takes == *" $w "* ]] && { _mq_prev=$w; ((i++)); }
		else
			for ((j = 1; j < ${#w}; j++)); do
				if [[ $takes == *" -${w:j:1} "* ]]; then
					((j == ${#w} - 1)) &&
					    { _mq_prev=-${w:j:1}; ((i++)); }
					break
				fi
			done
		fi
	done
	# _mq_prev is set only when its argument is the word under completion
	((i == n + 1)) || _mq_prev=""
}

_mq_send()
{
	local _mq_w _mq_pos _mq_prev cur
	local argopts="-D -H -K -k -p -s -z --delimiter --header
	    --key-delimiter --key --partition --spool --compress
	    --sync-interval --id --replicas --timeout --at --delay
	    --commit --abort --txn-timeout --check"

	_mq_words
	_mq_args "${argopts//[[:space:]]/ }"
	cur=${_mq_w[-1]}
	case $_mq_prev in
	-s|--spool)	_mq_dirs; return ;;
	-z|--compress)	_mq_reply none zlib zlib:{0..9}; return ;;
	?*)		COMPREPLY=(); return ;;
	esac
	case $cur in
	--spool=*)	_mq_dirs; return ;;
	--compress=*)	_mq_reply --compress={none,zlib,zlib:{0..9}}; return ;;
	-*)
		_mq_reply -0 -D -H -J -K -h -k -p -q -s -v -z \
		    --abort= --at= --check= --commit= --compress= --delay= \
		    --delimiter= --header= --help --json --prepare --txn-timeout= \
		    --id= --key-delimiter= --key= --no-create --no-sync --null \
		    --partition= --print-offsets --progress --quiet --replicas= \
		    --spool= --sync-interval= --timeout= --verbose --version --whole
		[[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
		return ;;
	esac
	if ((${#_mq_pos[@]} == 0)); then
		_mq_topics
	else
		COMPREPLY=()
	fi
}

_mq_recv_argopts="-c -D -F -g -j -o -p -s -u -x --count --delimiter
    --format --group --jobs --offset --partition --spool --until --exec
    --dead-letter --exec-timeout --filter --rate --retries --timeout"
_mq_recv_argopts=${_mq_recv_argopts//[[:space:]]/ }

# _mq_recv_groups PREFIX PLACEHOLDER: offer the consumer groups of the
# topic named on the line, before or after the cursor, PREFIX before each.
# PLACEHOLDER stands for the word under completion while the whole line
# is parsed.
_mq_recv_groups()
{
	local _mq_w _mq_pos _mq_prev before after b=() a=() topic spool

	before=${COMP_LINE:0:COMP_POINT}
	after=${COMP_LINE:COMP_POINT}
	before=${before%"${before##*[[:blank:]]}"}
	after=${after#"${after%%[[:blank:]]*}"}
	read -ra b <<<"$before"
	read -ra a <<<"$after"
	_mq_w=("${b[@]}" "$2" "${a[@]}" "")
	_mq_args "$_mq_recv_argopts"
	topic=${_mq_pos[0]}
	spool=$(_mq_spool)
	_mq_words
	if [[ -n $topic && $topic != */* ]]; then
		_mq_subdirs "$spool/topics/$topic/groups" "$1"
	else
		COMPREPLY=()
	fi
}

_mq_recv()
{
	local _mq_w _mq_pos _mq_prev cur

	_mq_words
	_mq_args "$_mq_recv_argopts"
	cur=${_mq_w[-1]}
	case $_mq_prev in
	-s|--spool)	_mq_dirs; return ;;
	-o|--offset)	_mq_reply beginning end; return ;;
	-u|--until)	_mq_reply end; return ;;
	-g|--group)	_mq_recv_groups "" X; return ;;
	--dead-letter)	_mq_topics; return ;;
	-x|--exec)	_mq_cmds; return ;;
	?*)		COMPREPLY=(); return ;;
	esac
	case $cur in
	--spool=*)	_mq_dirs; return ;;
	--offset=*)	_mq_reply --offset={beginning,end}; return ;;
	--until=*)	_mq_reply --until=end; return ;;
	--group=*)	_mq_recv_groups --group= --x=; return ;;
	--dead-letter=*) _mq_topics --dead-letter=; return ;;
	--*=*)		COMPREPLY=(); return ;;
	-*)
		_mq_reply -0 -D -F -J -c -f -g -h -j -o -p -q -s -u -v -x \
		    --count= --dead-letter= --delimiter= --exec= \
		    --exec-timeout= --filter= \
		    --follow --format= --group= --help --jobs= --json \
		    --null --offset= --partition= --quiet --rate= \
		    --retries= --skip-damage --spool= --timeout= --until= \
		    --verbose --version --wait-topic
		[[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
		return ;;
	esac
	if ((${#_mq_pos[@]} == 0)); then
		_mq_topics
	else
		COMPREPLY=()
	fi
}

# _mq_config_kv PREFIX: offer key=value settings, PREFIX before each.
_mq_config_kv()
{
	local p=$1 cur=${_mq_w[-1]}

	cur=${cur#"$p"}
	case $cur in
	compression=*)
		_mq_reply "$p"compression={none,zlib,zlib:{0..9}} ;;
	cleanup.policy=*)
		_mq_reply "$p"cleanup.policy={delete,compact,"compact,delete"} ;;
	*=*)
		COMPREPLY=() ;;
	*)
		_mq_reply "$p"{partitions,retention.ms,retention.bytes,segment.bytes,max.message.bytes,compression,dedup.window.ms,cleanup.policy,delete.retention.ms,min.compaction.lag.ms,min.cleanable.dirty.ratio,compaction.map.bytes}=
		compopt -o nospace 2>/dev/null ;;
	esac
}

# _mq_topic_groups [TOPIC]: offer the consumer groups of TOPIC, or of
# every topic when TOPIC is empty.
_mq_topic_groups()
{
	local spool t d names=()

	spool=$(_mq_spool)
	for t in "$spool"/topics/${1:-*}/groups; do
		for d in "$t"/* "$t"/.[!.]* "$t"/..?*; do
			[[ -d $d ]] && names+=("${d##*/}")
		done
	done
	_mq_reply $(printf '%s\n' "${names[@]}" | sort -u)
}

# _mq_group_topics GROUP: offer the topics that have consumer group GROUP.
_mq_group_topics()
{
	local spool d names=()

	spool=$(_mq_spool)
	[[ $1 == */* ]] && { COMPREPLY=(); return; }
	for d in "$spool"/topics/*/groups/"$1"; do
		[[ -d $d ]] || continue
		d=${d%/groups/*}
		names+=("${d##*/}")
	done
	_mq_reply "${names[@]}"
}

_mq_topic()
{
	local _mq_w _mq_pos _mq_prev cur cmd
	local argopts="-s --spool -P --config --to -o --output -p --partition"

	_mq_words
	_mq_args "$argopts"
	cur=${_mq_w[-1]}
	cmd=${_mq_pos[0]}
	case $_mq_prev in
	-s|--spool)	_mq_dirs; return ;;
	-o|--output)	COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--config)	_mq_config_kv ""; return ;;
	--to)		_mq_reply beginning end; return ;;
	?*)		COMPREPLY=(); return ;;
	esac
	case $cur in
	--spool=*)	_mq_dirs; return ;;
	--config=*)	_mq_config_kv --config=; return ;;
	--to=*)		_mq_reply --to={beginning,end}; return ;;
	-*)
		case $cmd in
		"")	_mq_reply -h -q -s -v --help --quiet --spool= \
			    --verbose --version ;;
		create)	_mq_reply -P --config= --partitions= --if-not-exists ;;
		delete)	_mq_reply --force ;;
		list)	_mq_reply -l --long --json ;;
		describe|groups|config) _mq_reply --json ;;
		verify)	_mq_reply --repair ;;
		reset)	_mq_reply --to= ;;
		stats)	_mq_reply --json --prometheus -o --output= ;;
		dump)	_mq_reply -p --partition= --json ;;
		*)	COMPREPLY=() ;;
		esac
		[[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
		return ;;
	esac
	case $cmd,${#_mq_pos[@]} in
	,0)
		_mq_reply create delete list describe config verify groups \
		    reset delete-group gc stats cancel abort dump ;;
	delete,1|describe,1|config,1|verify,1|groups,1|gc,1|cancel,1|abort,1|dump,1)
		_mq_topics ;;
	reset,1|delete-group,1)
		# the group comes before its topic: the groups of all topics
		_mq_topic_groups ;;
	reset,2|delete-group,2)
		# the topics that have that group
		_mq_group_topics "${_mq_pos[1]}" ;;
	config,*)
		_mq_config_kv "" ;;
	*)
		COMPREPLY=() ;;
	esac
}

_mq_replicate()
{
	local _mq_w _mq_pos _mq_prev cur
	local argopts="-e -s -t --rsh --spool --topic --remote-path --timeout"

	_mq_words
	_mq_args "$argopts"
	cur=${_mq_w[-1]}
	case $_mq_prev in
	-t|--topic)	_mq_topics; return ;;
	-s|--spool)	_mq_dirs; return ;;
	-e|--rsh|--timeout) COMPREPLY=(); return ;;
	--remote-path)	compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
	esac
	case $cur in
	-*)
		_mq_reply -e -f -h -n -q -s -t -v --delete --demote --dry-run \
		    --follow --help --progress --promote --quiet --read-only \
		    --remote-path= --rsh= --sender --server --spool= \
		    --timeout= --topic= --verbose --version
		[[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
		return ;;
	esac
	_mq_dirs
}

complete -F _mq_send mq-send
complete -F _mq_replicate mq-replicate
complete -F _mq_recv mq-recv
complete -F _mq_topic mq-topic
