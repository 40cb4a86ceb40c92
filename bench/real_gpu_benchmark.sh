#!/bin/bash
# Issue 12 on a machine with a real NVIDIA GPU whose python3 holds a real torch with CUDA
# (docs/hardware.md): the audit's torch child against that interpreter (cuda, gpu-memory beside
# nvidia-smi, torch-compile), then the benchmark job against a stand-in backend whose syntheses do
# real GPU work (bench/gpu_standin_backend.py) while ishowd samples the GPU through NVML each second,
# then the whole audit over the fixture deployment with that interpreter.
#
#   OUT=/tmp/hw bash bench/real_gpu_benchmark.sh
#
# ishowd must be importable by python3 (installed, or PYTHONPATH at a checkout with its
# dependencies and nvidia-ml-py). Writes $OUT/real_gpu_benchmark.log. Changes no GPU setting.
set -u
OUT=${OUT:-/tmp/ishowd-real-gpu}
PY=${PYTHON:-python3}
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
W=$(mktemp -d)
exec > >(tee "$OUT/real_gpu_benchmark.log") 2>&1
ctl() { "$PY" -c 'import sys; sys.argv[0] = "ishowctl"; from ishowd.cli import main; main()' --config "$W/ishowd.toml" "$@"; }
stamp() { echo "-- $(date -u +%FT%T.%NZ)"; }

echo "== nvidia-smi"
stamp
nvidia-smi --query-gpu=name,driver_version,memory.used,memory.free,memory.total,utilization.gpu,clocks.gr,clocks.max.gr --format=csv

echo "== the audit's torch child, run by its path in $PY (what the checks python, cuda, torch-compile, f5-api-import read)"
stamp
"$PY" "$("$PY" -c 'import ishowd.audit.probe as p; print(p.__file__)')" 2>"$W/probe.err"
echo "(exit $?; stderr: $(tr '\n' ' ' < "$W/probe.err"))"
stamp
nvidia-smi --query-gpu=memory.used,memory.free,memory.total --format=csv

echo "== the stand-in backend with real GPU work"
mkdir -p "$W/deploy"
cp -a "$HERE/tests/fixtures/deployment/." "$W/deploy/"
mkdir -p "$W/deploy/logs"
"$PY" "$HERE/bench/gpu_standin_backend.py" "$W/deploy/logs/backend.log" --rtf 0.25 --seconds-per-char 0.2 \
  > "$W/url" 2>"$W/backend.err" &
BACKEND=$!
for _ in $(seq 300); do [ -s "$W/url" ] && break; sleep 0.1; done
URL=$(cat "$W/url")
echo "backend at $URL (pid $BACKEND)"
cat > "$W/ishowd.toml" <<TOML
[storage]
path = "$W/ishowd.db"
[exporter]
listen = ""
[sampling]
interval = "1s"
[gpu]
nvml = "on"
[backend]
url = "$URL"
health_interval = "2s"
[rtf]
logs = ["$W/deploy/logs/backend.log"]
[deployment]
root = "$W/deploy"
python = "$(command -v "$PY")"
TOML
"$PY" -c 'import sys; sys.argv[0] = "ishowd"; from ishowd.daemon import main; main()' run --config "$W/ishowd.toml" \
  2>"$W/daemon.err" &
DAEMON=$!
for _ in $(seq 600); do [ -S "$W/ishowd.sock" ] && break; sleep 0.1; done
sleep 5   # five quiet samples before the first request, to see the GPU idle first

echo "== ishowctl jobs run benchmark --json (through the running daemon)"
stamp
ctl jobs run benchmark --json
echo "(exit $?)"
stamp
sleep 3

echo "== gpu_utilization_percent per second, from 20 s before the benchmark to its end (NVML, stored by ishowd)"
ctl history gpu_utilization_percent --since 2m --step 1s
echo "== gpu_memory_used_bytes"
ctl history gpu_memory_used_bytes --since 2m --step 10s
echo "== benchmark_rtf in status"
ctl status --json | "$PY" -c 'import json,sys; [print(m["name"], m["labels"], m["value"]) for m in json.load(sys.stdin)["metrics"] if m["name"].startswith("benchmark_rtf")]'

echo "== ishowctl audit (the fixture deployment, this machine's GPU and torch)"
stamp
ctl audit
echo "(exit $?)"
stamp
nvidia-smi --query-gpu=memory.used,memory.free,clocks.gr,clocks.max.gr --format=csv

sleep 6   # the log ingestion's interval (5 s): the audit's requests are read in
echo "== the benchmark's and the audit's requests in the store (source=benchmark); production's last hour"
ctl rtf list --since 10m --source benchmark
ctl status | sed -n '/^rtf/,+1p'
kill -TERM $DAEMON; wait $DAEMON; echo "daemon exit $?"
kill -TERM $BACKEND; wait $BACKEND
echo "== daemon stderr"; tail -20 "$W/daemon.err"
echo "== backend stderr"; tail -5 "$W/backend.err"
rm -rf "$W"
