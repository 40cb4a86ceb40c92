"""Host metrics (psutil): CPU, memory, swap, and free space and size per watched file system.

Read by ``ishowd/collectors/host.py``."""
from __future__ import annotations

from ..metrics import declare

CPU = declare("cpu_utilization_percent", "percent", "CPU time in use across all cores since the last tick.")
MEM_USED = declare("memory_used_bytes", "bytes", "Memory in use (total minus available).")
MEM_AVAILABLE = declare("memory_available_bytes", "bytes", "Memory available to new processes without swapping.")
MEM_TOTAL = declare("memory_total_bytes", "bytes", "Physical memory.")
SWAP_USED = declare("swap_used_bytes", "bytes", "Swap in use.")
DISK_FREE = declare("disk_free_bytes", "bytes", "Free space on the file system holding the path, for unprivileged users.",
                    ("path",))
DISK_TOTAL = declare("disk_total_bytes", "bytes", "Size of the file system holding the path.", ("path",))

METRICS = (CPU, MEM_USED, MEM_AVAILABLE, MEM_TOTAL, SWAP_USED, DISK_FREE, DISK_TOTAL)
