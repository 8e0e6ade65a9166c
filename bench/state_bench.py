"""Figure 6: the state store with ``fleets`` fleets of 10 members each: `vm fleet list` and
`vm fleet status NAME --no-refresh` (the record only; refreshing is the providers' cost, figures 1-5).

The rows are written straight into a fresh state file (the schema comes from vmops' own migrations) in one
transaction. Floor: a Python process reading every fleet and member row with sqlite3.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Callable

from bench.procs import VM, median_wall, run
from bench.result import Figure
from bench.simhost import SimHost

FLEETS = 1000
MEMBERS = 10
PROVIDERS = ("crusoe", "lambda", "nebius")
TYPES = {"crusoe": "h100.1x", "lambda": "gpu_1x_h100", "nebius": "gpu-h100-sxm/1gpu-16vcpu-200gb"}
NOW = "2026-11-25T12:00:00+00:00"
READ_SCRIPT = ("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\n"
               "f = c.execute('SELECT * FROM fleet').fetchall()\nm = c.execute('SELECT * FROM member').fetchall()\n"
               "print(len(f), len(m))\n")


def seed(path: Path, fleets: int) -> None:
    from vmops.state import Store

    with Store(path) as store, store.write() as db:
        for i in range(fleets):
            name = f"bench-{i:04d}"
            cur = db.execute(
                "INSERT INTO fleet (name, gpu, count, min_count, policy, state, allow_unterminable_reserved, "
                "created_at, updated_at) VALUES (?, 'h100:1', ?, ?, 'spread', 'active', 0, ?, ?)",
                (name, MEMBERS, MEMBERS, NOW, NOW))
            fid = cur.lastrowid
            rows = []
            for seq in range(1, MEMBERS + 1):
                p = PROVIDERS[seq % 3]
                rows.append((fid, seq, f"vmops-{name}-{seq:03d}", p, str(uuid.uuid4()), None, TYPES[p], "running",
                             "running", 0, None, 3.0, str(uuid.uuid4()), NOW, NOW, NOW))
            db.conn.executemany(
                "INSERT INTO member (fleet_id, seq, name, provider, instance_id, region, native_type, status, state, "
                "reserved, reservation_id, price_per_hour, idempotency_key, created_at, updated_at, last_seen_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def run_state(host: SimHost, fleets: int, runs: int, log: Callable[[str], None]) -> list[Figure]:
    home = host.dir / "state-home"
    home.mkdir(exist_ok=True)
    db = home / "state.db"
    seed(db, fleets)
    env = host.env(home)
    out = run([sys.executable, "-c", READ_SCRIPT, str(db)], env).stdout.split()
    if out != [str(fleets), str(fleets * MEMBERS)]:
        raise RuntimeError(f"state store seed: expected {fleets} fleets, read {out}")
    floor, _ = median_wall([sys.executable, "-c", READ_SCRIPT, str(db)], env, runs)
    listed = run(VM + ["fleet", "list"], env)
    if listed.stdout.count("bench-") != fleets:
        raise RuntimeError(f"vm fleet list showed {listed.stdout.count('bench-')} of {fleets} fleets")
    list_s, _ = median_wall(VM + ["fleet", "list"], env, runs)
    last = f"bench-{fleets - 1:04d}"
    status_s, _ = median_wall(VM + ["fleet", "status", last, "--no-refresh"], env, runs)
    log(f"sqlite3 read {floor * 1000:.0f} ms; vm fleet list {list_s * 1000:.0f} ms; "
        f"vm fleet status --no-refresh {status_s * 1000:.0f} ms")
    what = f"python: sqlite3 reads all {fleets} fleets and {fleets * MEMBERS} members"
    return [
        Figure("6 state store", f"vm fleet list ({fleets:,} fleets x {MEMBERS})", list_s, "s", floor, what, None,
               note="no target in the issue"),
        Figure("6 state store", f"vm fleet status NAME --no-refresh ({fleets:,} fleets)", status_s, "s", floor, what,
               None, note="no target in the issue"),
    ]
