#!/bin/sh
# demo.sh - mq's main job in a few lines: produce, consume, follow.
set -e
PATH=$(pwd)/bin:$PATH
MQ_SPOOL=$(mktemp -d "${TMPDIR:-/tmp}/mq-demo.XXXXXX")
export PATH MQ_SPOOL
trap 'kill $follower 2>/dev/null || true; rm -rf "$MQ_SPOOL"' EXIT
say() { printf '\n$ %s\n' "$*"; }

say "seq 100000 | mq-send jobs"
time_start=$(date +%s%N)
seq 100000 | mq-send jobs
echo "stored 100000 messages durably in $(( ($(date +%s%N) - time_start) / 1000000 )) ms"

say "mq-recv jobs | tail -3"
mq-recv jobs | tail -3

say "mq-recv -o -2 -F '%p/%o %T %s\n' jobs"
mq-recv -o -2 -F '%p/%o %T %s\n' jobs

say "mq-send -k user42 -H type=signup events 'alice joined'; mq-recv -J events"
mq-send -k user42 -H type=signup events 'alice joined'
mq-recv -J events

say "mq-recv -f events &   # follow, like tail -f"
mq-recv -f -F 'followed: %s\n' events -o end &
follower=$!
sleep 0.3
say "mq-send events 'bob joined' 'carol joined'"
mq-send events 'bob joined' 'carol joined'
sleep 0.5
kill $follower; wait $follower 2>/dev/null || true

say "mq-topic describe jobs"
mq-topic describe jobs
say "mq-topic verify"
mq-topic -v verify
