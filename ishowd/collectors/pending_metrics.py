"""TEMPORARY: the metrics of issue 4, declared so the default alert rules validate.

The backend probe and log / RTF ingestion (issue 4) declare these on their
own branch; drop this module when it merges. Names,
units, labels and kinds follow docs/interface.md. No collector lives here.
"""
from __future__ import annotations

from ..metrics import declare

# issue 4
declare("backend_up", "boolean", "1 when GET /api/health answers ok, else 0.", group="backend")
declare("backend_rss_bytes", "bytes", "Resident memory of the backend process.", group="backend")
declare("backend_log_errors_total", "count", "Error lines counted in the backend log.", ("level",),
        kind="counter", group="backend")
declare("tts_rtf", "ratio", "Real-time factor of one synthesised request (wall seconds / audio seconds).",
        ("engine", "voice", "source"), group="rtf")
