"""The benchmark's own requests, through everything real: the job sends them, the backend logs them as
any client's, the daemon's log ingestion records them as source=benchmark, production figures leave them out."""
from __future__ import annotations

import json

from backend_harness import Harness
from hw_helpers import board_root
from standin_backend import StandinBackend

from ishowd import catalog

TEXT = catalog.loads_config("", "<default>").sections["jobs.benchmark"]["text"]


def test_a_benchmark_run_lands_in_the_store_as_benchmark_records_beside_production(tmp_path):
    board = board_root("orin-jp6-locked")          # a Jetson with 60 GB available: the run is not refused
    backend = StandinBackend(tmp_path / "logs" / "backend.log", rtf=0.2, seconds_per_char=0.01)
    (tmp_path / "logs").mkdir()
    backend.start()
    h = Harness(tmp_path, backend_url=backend.url, extra=(
        f'[host]\nsysfs_root = "{board / "sys"}"\nprocfs_root = "{board / "proc"}"\n[gpu]\nnvml = "off"\n'
        f'jtop_socket = "/nonexistent"\nnvpmodel_path = "/nonexistent"\n'))
    try:
        h.start()
        assert h.wait_for((tmp_path / "state" / "ishowd.sock").exists), "the daemon's control socket"
        backend.synth("请问" + TEXT)                  # a viewer quoting the sentence: production
        backend.synth("今天天气不错")
        run = h.ctl("jobs", "run", "benchmark", "--json")
        assert run.returncode == 0, run.stderr.decode()
        assert json.loads(run.stdout)["status"] == "ok"
        backend.synth("谢谢大家")
        assert h.wait_count(2 + 6 + 1) == 9         # the warm-up and the 5 runs, and the three others
        sources = [r[1] for r in h.records()]
        assert sources == ["api", "api"] + ["benchmark"] * 6 + ["api"]
        listed = json.loads(h.ctl("rtf", "list", "--since", "1h", "--source", "benchmark", "--json").stdout)
        assert len(listed) == 6
        status = json.loads(h.ctl("status", "--json").stdout)["rtf"]
        assert status["count"] == 3 and status["benchmark"]["count"] == 6
        assert h.ctl("rtf", "weekly", "--json").returncode == 0
        week = json.loads(h.ctl("rtf", "weekly", "--weeks", "1", "--json").stdout)[-1]
        assert week["count"] + week["first_after_start"] == 3 and week["benchmark"]["runs"] == 1
    finally:
        h.stop()
        h.close()
        backend.stop()
