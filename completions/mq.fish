# fish completion for mq-send, mq-recv and mq-topic.
#
# Install as ~/.config/fish/completions/mq-send.fish (with copies or
# symlinks named mq-recv.fish and mq-topic.fish), or source it.
#
# Topic names are completed by listing SPOOL/topics/, and consumer group
# names by listing SPOOL/topics/TOPIC/groups/, never by running a binary.  SPOOL is the -s/--spool given earlier on the line, else
# $MQ_SPOOL, else ${XDG_STATE_HOME:-$HOME/.local/state}/mq.

# The options that take an argument, by program.
set -g __mq_send_argopts -D -H -K -k -p -s -z --delimiter --header \
    --key-delimiter --key --partition --spool --compress --sync-interval \
    --id --at --delay --commit --abort --txn-timeout --check
set -g __mq_recv_argopts -c -D -F -g -j -o -p -s -u -x --count \
    --delimiter --format --group --jobs --offset --partition --spool \
    --until --exec --dead-letter --exec-timeout --filter --rate --retries \
    --timeout
set -g __mq_topic_argopts -s --spool -P --config --to -o --output

function __mq_positionals --description 'Print the non-option words before the cursor'
    __mq_positionals_of $argv -- (commandline -opc)
end

function __mq_positionals_of --description 'Print the non-option words of a command line'
    # __mq_positionals_of ARGOPT... -- COMMAND WORD...
    set -l i (contains -i -- -- $argv)
    set -l takes $argv[1..(math $i - 1)]
    set -l words $argv[(math $i + 2)..-1]
    set -l skip 0
    set -l ddash 0
    for w in $words
        if test $skip -eq 1
            set skip 0
            continue
        end
        if test $ddash -eq 1
            echo -- $w
            continue
        end
        switch $w
            case --
                set ddash 1
            case '--*=*'
            case '--*'
                contains -- $w $takes; and set skip 1
            case '-?*'
                set -l chars (string split '' -- (string sub -s 2 -- $w))
                set -l n (count $chars)
                for i in (seq $n)
                    if contains -- -$chars[$i] $takes
                        test $i -eq $n; and set skip 1
                        break
                    end
                end
            case '*'
                echo -- $w
        end
    end
end

function __mq_spool --description 'Print the spool the command line would use'
    set -l words (commandline -opc)
    set -l spool
    set -l n (count $words)
    for i in (seq 2 $n)
        set -l w $words[$i]
        switch $w
            case --
                break
            case '--spool=*'
                set spool (string replace -- '--spool=' '' $w)
            case --spool
                test $i -lt $n; and set spool $words[(math $i + 1)]
            case '--*'
            case '*'
                if string match -qr -- '^-[0fJlqv]*s$' $w
                    test $i -lt $n; and set spool $words[(math $i + 1)]
                else if set -l m (string match -r -- '^-[0fJlqv]*s(.+)$' $w)
                    set spool $m[2]
                end
        end
    end
    if test -z "$spool"
        if set -q MQ_SPOOL; and test -n "$MQ_SPOOL"
            set spool $MQ_SPOOL
        else if set -q XDG_STATE_HOME; and test -n "$XDG_STATE_HOME"
            set spool $XDG_STATE_HOME/mq
        else
            set spool $HOME/.local/state/mq
        end
    end
    string replace -r -- '^~' $HOME $spool
end

function __mq_topics --description 'List the topics of the spool'
    set -l spool (__mq_spool)
    for d in $spool/topics/* $spool/topics/.*
        test -d $d; or continue
        set -l name (string replace -r '.*/' '' -- $d)
        contains -- $name . ..; or echo $name
    end
end

function __mq_recv_groups --description 'List the consumer groups of the topic on the line'
    # The topic may be before or after the cursor; the word under
    # completion, an option argument, is replaced by a placeholder.
    set -l before (commandline -opc)
    set -l all (commandline -o)
    set -l n (count $before)
    set -l skip 1
    test -n (commandline -ct); and set skip 2
    set -l after
    if test (count $all) -ge (math $n + $skip)
        set after $all[(math $n + $skip)..-1]
    end
    set -l placeholder X
    string match -q -- '--group=*' (commandline -ct); and set placeholder --x=
    set -l pos (__mq_positionals_of $__mq_recv_argopts -- $before $placeholder $after)
    set -q pos[1]; or return
    string match -q -- '*/*' $pos[1]; and return
    set -l spool (__mq_spool)
    for d in $spool/topics/$pos[1]/groups/*
        test -d $d; and string replace -r '.*/' '' -- $d
    end
end

function __mq_all_groups --description 'List the consumer groups of every topic'
    set -l spool (__mq_spool)
    for d in $spool/topics/*/groups/*
        test -d $d; and string replace -r '.*/' '' -- $d
    end | sort -u
end

function __mq_group_topics --description 'List the topics that have the group on the line'
    set -l pos (__mq_positionals $__mq_topic_argopts)
    set -l spool (__mq_spool)
    if set -q pos[2]; and not string match -q -- '*/*' $pos[2]
        for d in $spool/topics/*/groups/$pos[2]
            test -d $d; or continue
            string replace -r '/groups/[^/]*$' '' -- $d | string replace -r '.*/' ''
        end
    end
end

function __mq_npos --description 'Test the number of positional words'
    # __mq_npos PROGRAM N: exactly N positional words so far
    set -l var __mq_$argv[1]_argopts
    test (count (__mq_positionals $$var)) -eq $argv[2]
end

function __mq_topic_cmd --description 'Test mq-topic subcommand and position'
    # __mq_topic_cmd CMD [N]: the subcommand is CMD (and N positional
    # words follow it)
    set -l pos (__mq_positionals $__mq_topic_argopts)
    test (count $pos) -ge 1; and test "$pos[1]" = $argv[1]; or return 1
    set -q argv[2]; or return 0
    test (count $pos) -eq (math $argv[2] + 1)
end

function __mq_config_kv --description 'Complete key=value configuration settings'
    set -l tok (commandline -ct)
    set -l pre ''
    string match -q -- '--config=*' $tok; and set pre --config=
    for k in partitions retention.ms retention.bytes segment.bytes \
            max.message.bytes dedup.window.ms delete.retention.ms \
            min.compaction.lag.ms min.cleanable.dirty.ratio \
            compaction.map.bytes
        echo $pre$k=
    end
    for v in none zlib zlib:(seq 0 9)
        echo $pre"compression=$v"
    end
    echo $pre"cleanup.policy=delete"
    echo $pre"cleanup.policy=compact"
    echo $pre"cleanup.policy=compact,delete"
end

# mq-send
complete -c mq-send -f
complete -c mq-send -n '__mq_npos send 0' -a '(__mq_topics)' -d topic
complete -c mq-send -s 0 -l null -d 'Input records are NUL-separated'
complete -c mq-send -s D -l delimiter -x -d 'Input record delimiter'
complete -c mq-send -s H -l header -x -d 'Add a header name=value'
complete -c mq-send -s K -l key-delimiter -x -d 'Split records into key and payload'
complete -c mq-send -s k -l key -x -d 'Key for every message'
complete -c mq-send -s p -l partition -x -d 'Store in this partition'
complete -c mq-send -s s -l spool -x -a '(__fish_complete_directories)' -d 'Spool directory'
complete -c mq-send -s z -l compress -x -a 'none zlib zlib:0 zlib:1 zlib:2 zlib:3 zlib:4 zlib:5 zlib:6 zlib:7 zlib:8 zlib:9' -d 'Compress batches'
complete -c mq-send -s q -l quiet -d 'Print no warnings'
complete -c mq-send -s v -l verbose -d 'Print more on standard error'
complete -c mq-send -s J -l json -d 'Input lines are JSON as printed by mq-recv -J'
complete -c mq-send -s h -l help -d 'Print usage and exit'
complete -c mq-send -l version -d 'Print version and exit'
complete -c mq-send -l id -x -d 'Store this send once per dedup window'
complete -c mq-send -l at -x -d 'Deliver at this time (epoch ms or ISO 8601)'
complete -c mq-send -l delay -x -d 'Deliver after this long (duration)'
complete -c mq-send -l prepare -d 'Store invisibly as a transaction, print its ID'
complete -c mq-send -l commit -x -d 'Make a prepared transaction visible'
complete -c mq-send -l abort -x -d 'Discard a prepared transaction'
complete -c mq-send -l txn-timeout -x -d 'Abort the prepared transaction after this long'
complete -c mq-send -l check -x -d 'Command that decides a timed-out transaction'
complete -c mq-send -l no-create -d 'Do not create a missing topic'
complete -c mq-send -l no-sync -d 'Do not fsync'
complete -c mq-send -l print-offsets -d 'Print partition and offset of each message'
complete -c mq-send -l progress -d 'Show a progress line on standard error'
complete -c mq-send -l sync-interval -x -d 'Sync at least this often (duration)'
complete -c mq-send -l whole -d 'All of standard input is one message'
complete -c mq-send -l replicas -x -d 'Wait until this many replicas have the messages'
complete -c mq-send -l timeout -x -d 'How long --replicas waits (duration)'

# mq-replicate
complete -c mq-replicate -a '(__fish_complete_directories)'
complete -c mq-replicate -s e -l rsh -x -a '(__fish_complete_command)' -d 'Command that reaches a remote host'
complete -c mq-replicate -s f -l follow -d 'Keep streaming as messages arrive'
complete -c mq-replicate -s n -l dry-run -d 'Say what would be done'
complete -c mq-replicate -s s -l spool -x -a '(__fish_complete_directories)' -d 'Local spool: the source of one operand'
complete -c mq-replicate -s t -l topic -x -d 'Copy only this topic'
complete -c mq-replicate -s q -l quiet -d 'Print no notices'
complete -c mq-replicate -s v -l verbose -d 'Say what is done'
complete -c mq-replicate -s h -l help -d 'Print usage and exit'
complete -c mq-replicate -l version -d 'Print version and exit'
complete -c mq-replicate -l delete -d 'Propagate topic deletion and retention'
complete -c mq-replicate -l demote -d 'Make a primary destination a replica'
complete -c mq-replicate -l progress -d 'Show a progress line'
complete -c mq-replicate -l promote -d 'Make a replica a primary'
complete -c mq-replicate -l read-only -d 'With --server: serve pulls only'
complete -c mq-replicate -l remote-path -r -d 'mq-replicate on the remote host'
complete -c mq-replicate -l sender -d 'With --server: this end is the source'
complete -c mq-replicate -l server -d 'Speak the protocol on stdin and stdout'
complete -c mq-replicate -l timeout -x -d 'How long to wait for the other end (duration)'

# mq-recv
complete -c mq-recv -f
complete -c mq-recv -n '__mq_npos recv 0' -a '(__mq_topics)' -d topic
complete -c mq-recv -s 0 -l null -d 'End each payload with NUL'
complete -c mq-recv -s D -l delimiter -x -d 'End each payload with this string'
complete -c mq-recv -s F -l format -x -d 'Format: %s %S %R %k %K %t %p %o %T %h %%'
complete -c mq-recv -s J -l json -d 'Print JSON lines'
complete -c mq-recv -s c -l count -x -d 'Exit after this many messages'
complete -c mq-recv -s f -l follow -d 'Wait for new messages'
complete -c mq-recv -s o -l offset -x -a 'beginning end' -d 'Start: beginning, end, N, -N, @TIME'
complete -c mq-recv -s u -l until -x -a end -d 'Stop before: N, @TIME, end'
complete -c mq-recv -s p -l partition -x -d 'Read only this partition'
complete -c mq-recv -s s -l spool -x -a '(__fish_complete_directories)' -d 'Spool directory'
complete -c mq-recv -l timeout -x -d 'Give up after this long without a message'
complete -c mq-recv -s g -l group -x -a '(__mq_recv_groups)' -d 'Consume as a member of this group'
complete -c mq-recv -s j -l jobs -x -d 'Run up to this many commands at once'
complete -c mq-recv -s x -l exec -x -a '(__fish_complete_command)' -d 'Run a command for each message'
complete -c mq-recv -l dead-letter -x -a '(__mq_topics)' -d 'Topic for messages whose command kept failing'
complete -c mq-recv -l filter -x -d 'Deliver only if the key, or header NAME=, matches a glob'
complete -c mq-recv -l rate -x -d 'At most N messages per second, N/s, N/m, N/h'
complete -c mq-recv -l retries -x -d 'Retry a failing command this many times'
complete -c mq-recv -l exec-timeout -x -d 'Kill a command that runs longer (duration)'
complete -c mq-recv -l wait-topic -d 'Wait for a missing or deleted topic to be made'
complete -c mq-recv -l skip-damage -d 'Read on past a hole in the offsets, warning'
complete -c mq-recv -s q -l quiet -d 'Print no warnings'
complete -c mq-recv -s v -l verbose -d 'Print more on standard error'
complete -c mq-recv -s h -l help -d 'Print usage and exit'
complete -c mq-recv -l version -d 'Print version and exit'

# mq-topic
complete -c mq-topic -f
complete -c mq-topic -n '__mq_npos topic 0' -s q -l quiet -d 'Print no warnings'
complete -c mq-topic -n '__mq_npos topic 0' -s v -l verbose -d 'Print more on standard error'
complete -c mq-topic -n '__mq_npos topic 0' -s s -l spool -x -a '(__fish_complete_directories)' -d 'Spool directory'
complete -c mq-topic -n '__mq_npos topic 0' -s h -l help -d 'Print usage and exit'
complete -c mq-topic -n '__mq_npos topic 0' -l version -d 'Print version and exit'
complete -c mq-topic -n '__mq_npos topic 0' -a create -d 'Create a topic'
complete -c mq-topic -n '__mq_npos topic 0' -a delete -d 'Delete a topic and its messages'
complete -c mq-topic -n '__mq_npos topic 0' -a list -d 'List topics'
complete -c mq-topic -n '__mq_npos topic 0' -a describe -d 'Show partitions, offsets and sizes'
complete -c mq-topic -n '__mq_npos topic 0' -a config -d 'Show or change configuration'
complete -c mq-topic -n '__mq_npos topic 0' -a verify -d 'Check checksums and indexes'
complete -c mq-topic -n '__mq_npos topic 0' -a groups -d 'Show consumer groups and their lag'
complete -c mq-topic -n '__mq_npos topic 0' -a reset -d 'Move the committed offsets of a group'
complete -c mq-topic -n '__mq_npos topic 0' -a delete-group -d 'Delete a consumer group'
complete -c mq-topic -n '__mq_npos topic 0' -a gc -d 'Apply retention, delete old segments'
complete -c mq-topic -n '__mq_npos topic 0' -a stats -d 'Numbers for monitoring'
complete -c mq-topic -n '__mq_npos topic 0' -a cancel -d 'Remove a scheduled message sent with --id'
complete -c mq-topic -n '__mq_topic_cmd cancel 0' -a '(__mq_topics)' -d topic
complete -c mq-topic -n '__mq_npos topic 0' -a abort -d 'Abort an open transaction'
complete -c mq-topic -n '__mq_topic_cmd abort 0' -a '(__mq_topics)' -d topic
complete -c mq-topic -n '__mq_npos topic 0' -a dump -d 'Show every batch header, for debugging'
complete -c mq-topic -n '__mq_topic_cmd dump 0' -a '(__mq_topics)' -d topic
complete -c mq-topic -n '__mq_topic_cmd dump' -s p -l partition -x -d 'Only this partition'
complete -c mq-topic -n '__mq_topic_cmd dump' -l json -d 'One JSON object a batch'
complete -c mq-topic -n '__mq_topic_cmd gc 0' -a '(__mq_topics)' -d topic
complete -c mq-topic -n '__mq_topic_cmd stats' -l json -d 'One JSON object'
complete -c mq-topic -n '__mq_topic_cmd stats' -l prometheus -d 'node_exporter textfile format'
complete -c mq-topic -n '__mq_topic_cmd stats' -s o -l output -r -d 'Write to this file, whole or not at all'
complete -c mq-topic -n '__mq_topic_cmd create' -s P -l partitions -x -d 'Number of partitions'
complete -c mq-topic -n '__mq_topic_cmd create' -l config -x -a '(__mq_config_kv)' -d 'Set a configuration key'
complete -c mq-topic -n '__mq_topic_cmd create' -l if-not-exists -d 'Succeed if the topic exists with these settings'
complete -c mq-topic -n '__mq_topic_cmd delete' -l force -d 'Delete even while group members run'
complete -c mq-topic -n '__mq_topic_cmd list' -s l -l long -d 'Print a table'
complete -c mq-topic -n '__mq_topic_cmd list' -l json -d 'The table as a JSON array'
complete -c mq-topic -n '__mq_topic_cmd describe' -l json -d 'One JSON object'
complete -c mq-topic -n '__mq_topic_cmd config' -l json -d 'One JSON object'
complete -c mq-topic -n '__mq_topic_cmd groups' -l json -d 'One JSON array'
complete -c mq-topic -n '__mq_topic_cmd verify' -l repair -d 'Cut torn tails, rebuild indexes'
complete -c mq-topic -n '__mq_topic_cmd delete 0' -a '(__mq_topics)' -d topic
complete -c mq-topic -n '__mq_topic_cmd describe 0' -a '(__mq_topics)' -d topic
complete -c mq-topic -n '__mq_topic_cmd config 0' -a '(__mq_topics)' -d topic
complete -c mq-topic -n '__mq_topic_cmd verify 0' -a '(__mq_topics)' -d topic
complete -c mq-topic -n '__mq_topic_cmd groups 0' -a '(__mq_topics)' -d topic
complete -c mq-topic -n '__mq_topic_cmd reset' -l to -x -a 'beginning end' -d 'Position: beginning, end, N, @TIME'
complete -c mq-topic -n '__mq_topic_cmd reset 0' -a '(__mq_all_groups)' -d group
complete -c mq-topic -n '__mq_topic_cmd delete-group 0' -a '(__mq_all_groups)' -d group
complete -c mq-topic -n '__mq_topic_cmd reset 1' -a '(__mq_group_topics)' -d topic
complete -c mq-topic -n '__mq_topic_cmd delete-group 1' -a '(__mq_group_topics)' -d topic
complete -c mq-topic -n 'not __mq_topic_cmd config 0; and __mq_topic_cmd config' -a '(__mq_config_kv)' -d setting
