#!/bin/bash
# Compare the NVML collector and `ishowd run --once` + `ishowctl status --json` with what
# nvidia-smi prints in the same run, on a machine with a real NVIDIA GPU (docs/hardware.md).
#
#   OUT=/tmp/hw bash bench/real_gpu_check.sh
#
# ishowd must be importable (installed, or PYTHONPATH at a checkout with its dependencies and
# nvidia-ml-py). Writes $OUT/real_gpu_check.log (everything, in order) and $OUT/status.json.
# Changes no GPU setting.
set -u
OUT=${OUT:-/tmp/ishowd-real-gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
DB=$(mktemp -d)
exec > >(tee "$OUT/real_gpu_check.log") 2>&1
Q=name,driver_version,utilization.gpu,memory.used,memory.total,temperature.gpu,clocks.gr,clocks.max.gr,power.draw,fan.speed,clocks_event_reasons.active

smi() {
  date -u +%FT%T.%NZ
  nvidia-smi --query-gpu=$Q --format=csv ||
    nvidia-smi --query-gpu=${Q/clocks_event_reasons/clocks_throttle_reasons} --format=csv
  nvidia-smi --query-gpu=uuid,pci.bus_id,memory.reserved,memory.free --format=csv
}

echo "== nvidia-smi (before)"
smi

echo "== NVML collector, called directly"
date -u +%FT%T.%NZ
"$PY" - <<'PYEOF'
import time
from ishowd import catalog
from ishowd.catalog import collectors
from ishowd.collectors import TickContext
cfg = catalog.loads_config('[gpu]\nnvml = "on"\n', "<real-gpu>")
c = collectors()["nvml"](cfg)
reason = c.setup()
print("setup:", reason or "ok", "| driver", getattr(c, "driver", "?"))
if reason is None:
    for g in c._gpus:
        print("gpu label:", g.label)
    for s in c.collect(TickContext(time.time(), cfg)):
        print(f"{s.metric.name}{dict(s.labels)} = {s.value!r} {s.metric.unit}")
    print("absent (NotSupported):", {g.label: sorted(g.unsupported) for g in c._gpus})
    c.close()
PYEOF

echo "== ishowd run --once, then ishowctl status"
cat > "$DB/ishowd.toml" <<TOML
[storage]
path = "$DB/ishowd.db"
[exporter]
listen = ""
[gpu]
nvml = "auto"
TOML
"$PY" -c 'import sys; sys.argv[0] = "ishowd"; from ishowd.daemon import main; main()' \
  run --config "$DB/ishowd.toml" --once
echo "run --once exit $?"
"$PY" -c 'import sys; sys.argv[0] = "ishowctl"; from ishowd.cli import main; main()' \
  --config "$DB/ishowd.toml" status --json > "$OUT/status.json"
"$PY" -c 'import sys; sys.argv[0] = "ishowctl"; from ishowd.cli import main; main()' \
  --config "$DB/ishowd.toml" status
echo "== status --json, the hardware part"
"$PY" - "$OUT/status.json" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
for m in d["metrics"]:
    if m["name"].startswith(("gpu_", "power_", "fan_")) and m["name"] != "gpu_clock_event_reason":
        print(f'{m["name"]}{m["labels"]} = {m["value"]!r} ({m["unit"]})')
print("gpu_lock:", d.get("gpu_lock"))
PYEOF

echo "== nvidia-smi (after)"
smi
nvidia-smi -q | grep -i -E "fan speed|^ *Idle  |^ *Reserved|^ *Used  " | head -12
nvidia-smi
rm -rf "$DB"
