"""`vm state import/export` (vmops.state.transfer) and `vm state check` (vmops.fleet.check) on real stores:
an SQLite file and a PostgreSQL database; the check against the simulators."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from vmops.errors import StateError
from vmops.fleet.check import AGREE, DIFFER, check_state
from vmops.model import CreateRequest, State
from vmops.state import FleetState, MemberStatus, Store
from vmops.state.transfer import copy_state, export_state, import_state

from tests.fleet.conftest import spec


def _laptop(path: Path, monkeypatch) -> None:
    """A single user's state file with two fleets and their history, made as alice."""
    monkeypatch.setenv("VMOPS_OPERATOR", "alice")
    with Store(path) as s:
        for name in ("train", "eval"):
            f, _ = s.claim_fleet(name, gpu="h100:1", count=2, min_count=2, policy="spread")
            for k in (1, 2):
                m = s.add_member(f.id, name=f"vmops-{name}-00{k}", provider="crusoe", region="r",
                                 native_type="t", idempotency_key=f"{name}-{k}")
                s.update_member(m.id, status=MemberStatus.RUNNING, state=State.RUNNING, instance_id=f"{name}-i{k}")
            s.set_fleet_state(f.id, FleetState.ACTIVE)
    monkeypatch.setenv("VMOPS_OPERATOR", "carol")  # whoever runs the import


def _digest(path: Path) -> str:
    """The state file's data: the file and its WAL (a reader may leave an empty WAL and the -shm index,
    SQLite's shared-memory file, beside it: they hold no data)."""
    wal = path.with_name(path.name + "-wal")
    return hashlib.sha256(path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")).hexdigest()


def _team_config(pg_url: str, tmp_path: Path):
    from vmops.config import load_config

    return load_config({"VMOPS_HOME": str(tmp_path / "team-home"), "VMOPS_DB_URL": pg_url})


def test_import_copies_everything_keeps_operators_and_leaves_the_source_alone(tmp_path, pg_url, monkeypatch) -> None:
    src = tmp_path / "laptop" / "state.db"
    _laptop(src, monkeypatch)
    before = _digest(src)
    cfg = _team_config(pg_url, tmp_path)
    out = import_state(cfg, f"sqlite:///{src}")
    assert sorted(out.copied) == ["eval", "train"] and out.unchanged == ()
    assert "****" in out.destination or ":" not in out.destination.split("@")[0].split("//")[1]
    assert _digest(src) == before  # the source is untouched
    with Store(pg_url) as team, Store(src, read_only=True) as laptop:
        for name in ("train", "eval"):
            a, b = laptop.get_fleet(name), team.get_fleet(name)
            assert (b.state, b.created_at, b.operator) == (a.state, a.created_at, "alice")
            assert [m.to_dict() for m in team.members(b.id)] == [m.to_dict() for m in laptop.members(a.id)]
            assert [e.to_dict() for e in team.events(b.id)] == [e.to_dict() for e in laptop.events(a.id)]
            assert {e.operator for e in team.events(b.id)} == {"alice"}
    again = import_state(cfg, f"sqlite:///{src}")  # a second run changes nothing
    assert again.copied == () and sorted(again.unchanged) == ["eval", "train"]
    with Store(pg_url) as team, Store(src, read_only=True) as laptop:
        assert len(team.list_fleets()) == 2 and sum(len(v) for v in team.members_by_fleet().values()) == 4
        # VMs the laptop labelled (ownership rule: vmops-store) are the team store's now
        assert laptop.identity in team.identities and team.identity != laptop.identity


def test_a_name_clash_refuses_the_whole_import(tmp_path, pg_url, monkeypatch) -> None:
    src = tmp_path / "laptop" / "state.db"
    _laptop(src, monkeypatch)
    with Store(pg_url) as team:  # the team already has a different fleet called "eval"
        team.claim_fleet("eval", gpu="a100:1", count=1, min_count=1, policy="spread")
    with pytest.raises(StateError, match=r"1 clash\(es\).*eval \(a different fleet") as e:
        import_state(_team_config(pg_url, tmp_path), f"sqlite:///{src}")
    assert e.value.exit_code == 13 and "train" not in str(e.value)
    with Store(pg_url) as team:
        assert [f.name for f in team.list_fleets()] == ["eval"]  # all or nothing: train was not copied


def test_export_to_a_new_sqlite_file_and_back(tmp_path, pg_url, monkeypatch) -> None:
    src = tmp_path / "laptop" / "state.db"
    _laptop(src, monkeypatch)
    cfg = _team_config(pg_url, tmp_path)
    import_state(cfg, f"sqlite:///{src}")
    out_file = tmp_path / "backup" / "state.db"
    res = export_state(cfg, f"sqlite:///{out_file}")
    assert sorted(res.copied) == ["eval", "train"]
    with Store(out_file) as a, Store(src) as b:
        assert [(f.name, f.operator, f.created_at) for f in a.list_fleets()] == \
               [(f.name, f.operator, f.created_at) for f in b.list_fleets()]
    with pytest.raises(StateError, match="same"):
        export_state(cfg, pg_url)


def test_same_provider_vm_on_record_elsewhere_is_a_clash(tmp_path, monkeypatch) -> None:
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    _laptop(a, monkeypatch)
    with Store(b) as dst:
        f, _ = dst.claim_fleet("other", gpu="h100:1", count=1, min_count=1, policy="spread")
        dst.add_member(f.id, name="x", provider="crusoe", region=None, native_type="t", idempotency_key="k",
                       instance_id="train-i1")
    with Store(a, read_only=True) as src, Store(b) as dst:
        with pytest.raises(StateError, match="train/vmops-train-001 \\(crusoe train-i1 is already on record\\)"):
            copy_state(src, dst)
        assert [f.name for f in dst.list_fleets()] == ["other"]


@pytest.mark.parametrize("state_db", ["sqlite", "postgresql"], indirect=True)
def test_check_lists_each_difference_and_changes_nothing(sims, config, make_manager, state_db) -> None:
    mgr = make_manager()
    mgr.create(spec("h100", 3, "chk"))
    report = check_state(mgr)
    assert report.exit_code == AGREE and report.differences == [] and report.fleets == 1
    members = [m for m in mgr.store.members(mgr.store.get_fleet("chk").id) if m.status is MemberStatus.RUNNING]
    victim = members[0]
    mgr.provider(victim.provider).destroy(victim.instance_id)
    stray = mgr.provider("crusoe").create(CreateRequest(name="vmops-chk-050", native_type="h100.1x", region="us-east1"))
    lost = mgr.provider("crusoe").create(CreateRequest(name="vmops-gone-001", native_type="h100.1x",
                                                       region="us-east1"))
    before = [m.to_dict() for m in mgr.store.members(mgr.store.get_fleet("chk").id)]
    report = check_state(mgr)
    assert report.exit_code == DIFFER
    got = {(d.fleet, d.vm, d.what.split(" (")[0].split(":")[0]) for d in report.differences}
    assert got == {
        ("chk", victim.name, "recorded as running but no longer exists at the provider"),
        ("chk", "vmops-chk-050", "exists at the provider but not on record"),
        ("gone", "vmops-gone-001", "exists at the provider; its fleet is not on record"),
    }, report.to_dict()
    assert [m.to_dict() for m in mgr.store.members(mgr.store.get_fleet("chk").id)] == before  # read only
    view = mgr.reconcile("chk")
    assert stray.id in {m.instance_id for m in view.members}
    report = check_state(mgr)
    assert {d.fleet for d in report.differences} == {"gone"}  # reconcile repaired the rest
    mgr.destroy("chk")
    mgr.provider("crusoe").destroy(lost.id)
    assert check_state(mgr).exit_code == AGREE


def test_check_lists_each_provider_once_for_every_fleet(sims, config, make_manager, state_db) -> None:
    """Hundreds of fleets must not mean hundreds of list calls: one list per provider per check."""
    mgr = make_manager()
    for name in ("one", "two", "three"):
        mgr.create(spec("h100", 3, name))
    lists = {"crusoe": "list_instances", "lambda": "list_instances", "nebius": "InstanceService/List"}
    before = {p: sims[p].requests.count(e) for p, e in lists.items()}
    report = check_state(mgr)
    assert report.exit_code == AGREE and report.fleets == 3, report.to_dict()
    assert {p: sims[p].requests.count(e) - before[p] for p, e in lists.items()} == {p: 1 for p in lists}
    for name in ("one", "two", "three"):
        mgr.destroy(name)


def test_vm_state_commands_as_a_user_runs_them(tmp_path, pg_url, monkeypatch, sims, vm_env) -> None:
    """`vm state import/export/check` through the real program: the import is all or nothing and
    idempotent, a clash is exit 13 naming it, check exits 0 when record and providers agree, 14 when not."""
    import json

    from tests.cli.helpers import vm

    src = tmp_path / "laptop" / "state.db"
    _laptop(src, monkeypatch)
    team = {**vm_env, "VMOPS_DB_URL": pg_url, "VMOPS_HOME": str(tmp_path / "cron-host")}
    r = vm(["state", "import", "--from", f"sqlite:///{src}", "-o", "json"], team)
    assert r.code == 0, r.err
    assert sorted(json.loads(r.out)["copied"]) == ["eval", "train"]
    r = vm(["state", "import", "--from", f"sqlite:///{src}", "-o", "json"], team)
    assert r.code == 0 and json.loads(r.out)["copied"] == []
    owners = {f["name"]: f["owner"] for f in json.loads(vm(["fleet", "list", "-o", "json"], team).out)}
    assert owners == {"train": "alice", "eval": "alice"}
    other = tmp_path / "other" / "state.db"
    with Store(other) as s:
        s.claim_fleet("train", gpu="h100:8", count=1, min_count=1, policy="spread")
    r = vm(["state", "import", "--from", f"sqlite:///{other}"], team)
    assert r.code == 13 and "train" in r.err
    # the laptop's fleets name instances the simulators do not have: check says so, and exits 14
    r = vm(["state", "check", "-o", "json"], team)
    assert r.code == 14 and {d["fleet"] for d in json.loads(r.out)["differences"]} == {"train", "eval"}
    fresh = {**vm_env, "VMOPS_HOME": str(tmp_path / "fresh")}
    assert vm(["fleet", "create", "-g", "h100", "-c", "1", "-n", "ok1", "-q"], fresh).code == 0
    r = vm(["state", "check"], fresh)
    assert r.code == 0 and "agree" in r.out
