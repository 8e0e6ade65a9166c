"""The SQLite store on one connection: vmops' own reads and writes run on the sqlite3 connection itself (a
command whose state file is current never imports sqlite-utils); the schema is made and migrated through
sqlite-utils' Database wrapped around that same connection, which is also the ``Store.db`` handle
(vmops/state/sqlite_backend.py)."""

import json
import subprocess
import sys
from pathlib import Path

from vmops.state import Store

READ_THEN_WRITE = """
import json, sys
from vmops.state import Store
s = Store(sys.argv[1])
fleets = [f.name for f in s.list_fleets()]
members = {k: len(v) for k, v in s.members_by_fleet().items()}
status = s.get_fleet("train").state.value
after_reads = "sqlite_utils" in sys.modules
s.log(s.get_fleet("train").id, "note", "a write")
with s.write():
    s.add_member(s.get_fleet("train").id, name="train-9", provider="crusoe", region="us-east1",
                 native_type="h100.1x", idempotency_key="k9")
after_write = "sqlite_utils" in sys.modules
same = s.db.conn is s._b.conn
after_handle = "sqlite_utils" in sys.modules
s.close()
print(json.dumps([fleets, members, status, after_reads, after_write, same, after_handle]))
"""


def _seed(path: Path) -> None:
    with Store(path) as s:
        f, _ = s.claim_fleet("train", gpu="h100:1", count=2, min_count=2, policy="spread")
        for i in range(2):
            s.add_member(f.id, name=f"train-{i}", provider="crusoe", region="us-east1", native_type="h100.1x",
                         idempotency_key=f"k{i}")


def test_reads_and_writes_need_no_sqlite_utils_and_its_handle_is_the_same_connection(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    _seed(db)
    p = subprocess.run([sys.executable, "-c", READ_THEN_WRITE, str(db)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    fleets, members, status, after_reads, after_write, same, after_handle = json.loads(p.stdout)
    assert fleets == ["train"] and list(members.values()) == [2] and status == "creating"
    assert after_reads is False  # listing, reading members and a fleet: sqlite3 only
    assert after_write is False  # writes too: plain SQL on the connection
    assert same is True and after_handle is True  # the tools' handle is sqlite-utils on the one connection
    with Store(db) as s:  # and the writes landed
        assert "a write" in [e.message for e in s.events(s.get_fleet("train").id)]
        assert len(s.members(s.get_fleet("train").id)) == 3


def test_a_new_state_file_is_made_through_sqlite_utils_in_wal_mode(tmp_path: Path) -> None:
    with Store(tmp_path / "state.db") as s:
        assert type(s.db).__module__ == "sqlite_utils.db"
        assert s.db.journal_mode == "wal"
        assert {"fleet", "member", "event", "meta"} <= set(s.db.table_names())
