"""The kill -9 torture and the accelerated soak at full length, as markdown tables.

    python bench/torture.py [--kills 200] [--first-start-kills 20] [--soak-days 7] [--seed N]
                            [--phase ticks|ingest|seal|rotation|first-start|soak ...]

``--kills`` is shared evenly by the four phases of the kill torture (sampling, ingestion, sealing,
log rotation; ``tests/torture_rig.py`` says what each kills and what is checked after each kill);
the first start (a new store each time, the daemon's process group killed) has its own count.
Each row names the command that repeats it (the same seed draws the same kill points; where a kill
lands still depends on timing). The soak (``tests/torture_soak.py``) runs in a process of its own and
is then compared with a brute-force computation over everything it wrote. Problems found are listed
under the tables; the exit status is 1 when there are any.
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

import torture_rig as rig  # noqa: E402
import torture_soak as soak  # noqa: E402

KILL_PHASES = ("ticks", "ingest", "seal", "rotation")
MiB = 1 << 20


def kill_row(fig: rig.Figures, command: str) -> str:
    landed = ", ".join(f"{what}: {n}" for what, n in fig.outcomes.items())
    return (f"| {fig.phase} | {fig.kills} | {fig.written} | {fig.ingested} | {fig.lost} | {fig.doubled} | "
            f"{fig.ticks_lost} | {fig.integrity_failures} | {len(fig.problems)} | {fig.wall_s:.0f} | {landed} | "
            f"`{command}` |")


def run_phase(name: str, tmp: Path, kills: int, seed: int) -> rig.Figures:
    if name == "seal":
        lib = rig.libfaketime()
        if lib is None:
            fig = rig.Figures("seal", seed)
            fig.outcomes["skipped: libfaketime is not installed (Debian package faketime)"] = 1
            return fig
        return rig.phase_seal(tmp, kills, seed, lib)
    return {"ticks": rig.phase_ticks, "ingest": rig.phase_ingest, "rotation": rig.phase_rotation,
            "first-start": rig.phase_first_start}[name](tmp, kills, seed)


def soak_row(days: float, seed: int, tmp: Path, command: str) -> tuple[str, list[str]]:
    started = time.monotonic()
    figures = soak.run(tmp, days, seed)
    soak_s = time.monotonic() - started
    started = time.monotonic()
    problems = soak.verify(tmp, figures)
    verify_s = time.monotonic() - started
    held_base, held_top, held_growth = soak.rss_growth(figures, "held")
    base, top, growth = soak.rss_growth(figures, "rss")
    hourly = figures["hourly"]
    warm = soak.warm_up_hours(figures)
    blocks = [h["blocks"] for h in hourly]
    row = (f"| {days:g} | {figures['end'] - figures['start']} | {figures['series']} | {figures['records']} | "
           f"{hourly[0]['rss'] / MiB:.2f} | {warm} h | {held_base / MiB:.2f} → {held_top / MiB:.2f} "
           f"({held_growth / 1024:+.0f} KiB) | {base / MiB:.2f} → {top / MiB:.2f} ({growth / 1024:+.0f} KiB) | "
           f"{blocks[warm - 1]} → {max(blocks[warm:])} | {figures['wal_max'] / MiB:.2f} | {len(problems)} | "
           f"{soak_s:.0f} + {verify_s:.0f} | {figures['seconds'] / days:.1f} | `{command}` |")
    return row, [f"soak: {p}" for p in problems]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=200, help="kills over the four kill phases (default 200)")
    ap.add_argument("--first-start-kills", type=int, default=20)
    ap.add_argument("--soak-days", type=float, default=7.0)
    ap.add_argument("--seed", type=int, default=None, help="default: a new one, printed")
    ap.add_argument("--phase", action="append", choices=KILL_PHASES + ("first-start", "soak"),
                    help="run only these (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the stores and logs (their folder is printed)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    phases = args.phase or list(KILL_PHASES) + ["first-start", "soak"]
    per_phase = max(1, round(args.kills / len(KILL_PHASES)))
    tmp = Path(tempfile.mkdtemp(prefix="ishowd-torture-"))
    me = "python bench/torture.py"
    print(f"seed {seed}; {sys.version.split()[0]}; work in {tmp}", flush=True)
    started = time.monotonic()
    rows, problems = [], []
    try:
        for name in phases:
            if name == "soak":
                continue
            kills = args.first_start_kills if name == "first-start" else per_phase
            fig = run_phase(name, tmp / name, kills, seed)
            opt = "--first-start-kills" if name == "first-start" else "--kills"
            total = kills if name == "first-start" else kills * len(KILL_PHASES)
            rows.append(kill_row(fig, f"{me} --phase {name} {opt} {total} --seed {seed}"))
            problems += fig.problems
            print(rows[-1], flush=True)
        soak_rows = []
        if "soak" in phases:
            row, found = soak_row(args.soak_days, seed, tmp / "soak",
                                  f"{me} --phase soak --soak-days {args.soak_days:g} --seed {seed}")
            soak_rows.append(row)
            problems += found
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    if rows:
        print("| phase | kills | records written | ingested | lost | doubled | ticks lost | integrity failures "
              "| problems | wall s | where the kills landed | command |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(rows))
        print()
    if soak_rows:
        print("| simulated days | ticks (1 s) | series | records | VmRSS after 1 h, MiB | warm-up | RSS held after "
              "it → most, MiB (growth) | VmRSS after it → most | Python blocks | WAL max, MiB | rollup problems | "
              "wall s (soak + check) | s per simulated day | command |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(soak_rows))
        print()
    print(f"total wall time {time.monotonic() - started:.0f} s; seed {seed}")
    if problems:
        print(f"\n{len(problems)} problems:")
        print("\n".join(f"- {p}" for p in problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
