#!/bin/bash
# Compare the NVML collector and `ishowd run --once` + `ishowctl status --json` with what
# nvidia-smi prints in the same run, on a machine with a real NVIDIA GPU (docs/hardware.md).
#
#   OUT=/tmp/hw bash bench/real_gpu_check.sh
#
# ishowd must be importable (installed, or PYTHONPATH at a checkout with its dependencies and
# nvidia-ml-py). Writes every output under $OUT and prints it too. Changes no GPU setting.
set -u
OUT=${OUT:-/tmp/ishowd-real-gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
Q=uuid,name,driver_version,pci.bus_id,utilization.gpu,memory.used,memory.total,temperature.gpu,clocks.gr,clocks.max.gr,power.draw,fan.speed

smi() {  # $1: tag
  nvidia-smi --query-gpu=$Q --format=csv > "$OUT/smi_$1.csv" 2>&1
  nvidia-smi --query-gpu=uuid,clocks_event_reasons.active --format=csv > "$OUT/smi_$1_reasons.csv" 2>&1 ||
    nvidia-smi --query-gpu=uuid,clocks_throttle_reasons.active --format=csv > "$OUT/smi_$1_reasons.csv" 2>&1
  nvidia-smi --query-gpu=name,driver_version,utilization.gpu,memory.used,memory.total,temperature.gpu,clocks.gr,clocks.max.gr,power.draw,fan.speed,clocks_event_reasons.active \
    --format=csv,nounits > "$OUT/smi_$1_brief.csv" 2>&1
}

echo "== nvidia-smi (before)"; smi before; cat "$OUT"/smi_before*.csv

echo "== NVML collector, called directly"
"$PY" - > "$OUT/collector.txt" 2>&1 <<'EOF'
import time
from ishowd import config
from ishowd.collectors import TickContext, load_all
cfg = config.loads('[gpu]\nnvml = "on"\n', "<real-gpu>")
c = load_all()["nvml"](cfg)
reason = c.setup()
print("setup:", reason or "ok", "| driver", getattr(c, "driver", "?"))
if reason is None:
    for g in c._gpus:
        print("gpu label:", g.label)
    for s in c.collect(TickContext(time.time(), cfg)):
        print(f"{s.metric.name}{dict(s.labels)} = {s.value!r} {s.metric.unit}")
    print("absent (NotSupported):", {g.label: sorted(g.unsupported) for g in c._gpus})
    c.close()
EOF
cat "$OUT/collector.txt"

echo "== ishowd run --once, ishowctl status"
cat > "$OUT/ishowd.toml" <<EOF
[storage]
path = "$OUT/ishowd.db"
[exporter]
listen = ""
[gpu]
nvml = "auto"
EOF
"$PY" -c 'import sys; sys.argv[0] = "ishowd"; from ishowd.daemon import main; main()' \
  run --config "$OUT/ishowd.toml" --once > "$OUT/run_once.log" 2>&1
echo "run --once exit $?"; cat "$OUT/run_once.log"
"$PY" -c 'import sys; sys.argv[0] = "ishowctl"; from ishowd.cli import main; main()' \
  --config "$OUT/ishowd.toml" status --json > "$OUT/status.json" 2> "$OUT/status.err"
"$PY" -c 'import sys; sys.argv[0] = "ishowctl"; from ishowd.cli import main; main()' \
  --config "$OUT/ishowd.toml" status > "$OUT/status.txt" 2>&1
cat "$OUT/status.txt"
"$PY" - "$OUT/status.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
for m in d["metrics"]:
    if m["name"].startswith(("gpu_", "power_", "fan_")):
        print(f'{m["name"]}{m["labels"]} = {m["value"]!r} ({m["unit"]})')
print("gpu_lock:", d.get("gpu_lock"))
EOF

echo "== nvidia-smi (after)"; smi after; cat "$OUT"/smi_after*.csv
nvidia-smi -q -d PERFORMANCE,CLOCK,POWER,TEMPERATURE > "$OUT/smi_q.txt" 2>&1
nvidia-smi -q | grep -i -A1 "fan speed" > "$OUT/smi_fan.txt" 2>&1
cat "$OUT/smi_fan.txt"
nvidia-smi > "$OUT/smi.txt" 2>&1
