#!/bin/bash
# demo.sh - mq's main job in a few lines: produce, consume, follow, share
# work in a group.  Each command is printed exactly as it is run.
set -e
PATH=$(pwd)/bin:$PATH
MQ_SPOOL=$(mktemp -d "${TMPDIR:-/tmp}/mq-demo.XXXXXX")
export PATH MQ_SPOOL
follower=
REPLICA=$MQ_SPOOL.replica
trap 'kill $follower 2>/dev/null || true; rm -rf "$MQ_SPOOL" "$REPLICA"' EXIT
# run CMD: print it as a shell prompt line, then run it
run() { printf '\n$ %s\n' "$*"; eval "$*"; }

run "mq-topic create -P 4 jobs"
run "seq 100000 | mq-send -v jobs"
run "mq-recv -p 0 jobs | tail -3"
run "mq-recv -p 0 -o -2 -F '%p/%o %T %s\n' jobs"
run "mq-send -k user42 -H type=signup events 'alice joined'"
run "mq-recv -J events"

printf '\n$ %s\n' "mq-recv -f -o end -F 'followed: %s\n' events &"
mq-recv -f -o end -F 'followed: %s\n' events &
follower=$!
sleep 0.3
run "mq-send events 'bob joined' 'carol joined'"
sleep 0.5
run "kill %1"
wait 2>/dev/null || true
follower=

run "mq-recv -g workers -c 3 -x 'echo \"worker got \$(cat) from partition \$MQ_PARTITION\"' jobs"
run "mq-topic groups jobs"
run "mq-topic describe jobs"
run "mq-topic -v verify"

# high availability: a replica, kept current, refusing writes until promoted
run "mq-replicate \"\$MQ_SPOOL\" \"\$REPLICA\""
run "mq-send -p 0 jobs more; mq-replicate \"\$MQ_SPOOL\" \"\$REPLICA\""
run "mq-recv -s \"\$REPLICA\" -p 0 -o -1 jobs"
run "mq-send -s \"\$REPLICA\" jobs x || echo \"exit \$?: a replica takes no writes\""
run "mq-replicate --promote \"\$REPLICA\" && mq-send -s \"\$REPLICA\" jobs after-failover"
