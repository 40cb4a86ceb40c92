#!/bin/bash
# The idle daemon of an earlier commit (A) against this tree's (B), in turns, each beside collectd:
#
#     bench/idle_ab.sh REV INTERVAL SECONDS ROUNDS      e.g. bench/idle_ab.sh 7fb4970 10 60 2
#
# Runs bench/idle_cost.py --intervals INTERVAL --seconds SECONDS, from a worktree of REV (its
# package first on PYTHONPATH, so the `ishowd run` it starts is REV's) and then from this tree,
# ROUNDS times, and prints the ishowd and collectd lines of each run. In turns, because on a
# shared machine the figures drift over an hour more than the two differ.
set -euo pipefail
rev=$1 interval=$2 seconds=$3 rounds=$4
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
old=$(mktemp -d /tmp/idle_ab-XXXXXX)
trap 'git -C "$here" worktree remove --force "$old" >/dev/null 2>&1 || true' EXIT
git -C "$here" worktree add --detach -f "$old" "$rev" >/dev/null 2>&1
"$python" -m compileall -q "$old/ishowd" >/dev/null   # from bytecode, as installed (idle_cost.py does B's)
for r in $(seq "$rounds"); do
  (cd "$old" && PYTHONPATH="$old" "$python" bench/idle_cost.py --intervals "$interval" --seconds "$seconds" \
     | grep -E '^(ishowd|collectd) +[0-9]' | sed "s/^/A $rev r$r /")
  (cd "$here" && "$python" bench/idle_cost.py --intervals "$interval" --seconds "$seconds" \
     | grep -E '^(ishowd|collectd) +[0-9]' | sed "s/^/B HEAD r$r /")
done
