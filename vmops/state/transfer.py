"""Copying fleet records between stores: `vm state import --from URL` (a single user's SQLite file into the
team database) and `vm state export --to URL` (the reverse).

* The source is opened read-only: nothing is created, migrated or written there.
* All or nothing: every fleet is copied in one write transaction of the destination. A fleet name the
  destination already holds as a different fleet (another creation time), or a provider VM it already
  records for another fleet, refuses the whole copy (``StateError``, exit 13) listing every clash.
* A fleet already in the destination (same name and creation time) is left as it is, so a second run
  copies nothing and succeeds.
* Rows keep their times, operator and vmops version; they get new ids in the destination.
* The destination takes on the source's store identities, so VMs labelled by the source (the ownership
  rule, vmops.fleet.ownership) are the destination's from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmops.errors import StateError
from vmops.state.records import EventRecord, FleetRecord, MemberRecord
from vmops.state.store import Store, store_for

if TYPE_CHECKING:
    from vmops.config import Config


@dataclass(frozen=True)
class TransferResult:
    source: str  # masked location
    destination: str
    copied: tuple[str, ...]  # fleet names copied
    unchanged: tuple[str, ...]  # already in the destination (an earlier run): left as they are

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "copied": list(self.copied),
                "unchanged": list(self.unchanged)}


def copy_state(source: Store, dest: Store) -> TransferResult:
    fleets = source.list_fleets()
    members = source.members_by_fleet()
    events = {f.id: source.events(f.id) for f in fleets}
    copied: list[str] = []
    unchanged: list[str] = []
    with dest.write():  # one transaction, holding the destination's write lock: the checks stay true
        have = {f.name: f for f in dest.list_fleets()}
        clashes: list[str] = []
        todo: list[tuple[FleetRecord, list[MemberRecord], list[EventRecord]]] = []
        for f in fleets:
            old = have.get(f.name)
            if old is not None:
                if old.created_at == f.created_at and old.gpu == f.gpu and old.count == f.count:
                    unchanged.append(f.name)
                else:
                    clashes.append(f"{f.name} (a different fleet of that name exists, created {old.created_at})")
                continue
            for m in members.get(f.id, []):
                if m.instance_id and dest.member_by_instance(m.provider, m.instance_id) is not None:
                    clashes.append(f"{f.name}/{m.name} ({m.provider} {m.instance_id} is already on record)")
            todo.append((f, members.get(f.id, []), events[f.id]))
        if clashes:
            raise StateError(f"{len(clashes)} clash(es) between {source.location} and {dest.location}; "
                             f"nothing was copied: {'; '.join(clashes)}",
                             hint="Rename or destroy the clashing fleets on one side, then run it again")
        for f, ms, es in todo:
            dest.insert_copy(f, ms, es)
            copied.append(f.name)
        # The copied fleets' VMs carry the source's identity label: the destination owns them now.
        for ident in sorted(source.identities):
            dest.add_identity(ident)
    return TransferResult(source.location, dest.location, tuple(copied), tuple(unchanged))


def _open_source(url: str) -> Store:
    return Store(url, read_only=True)


def import_state(config: "Config", from_url: str) -> TransferResult:
    """Copy the state at ``from_url`` into the configured store."""
    with _open_source(from_url) as src, store_for(config) as dst:
        _refuse_same(src, dst)
        return copy_state(src, dst)


def export_state(config: "Config", to_url: str) -> TransferResult:
    """Copy the configured store's state to ``to_url`` (an SQLite file there is created if missing)."""
    with Store(config.db_url or config.state_path, read_only=True) as src, Store(to_url) as dst:
        _refuse_same(src, dst)
        return copy_state(src, dst)


def _refuse_same(src: Store, dst: Store) -> None:
    same = (src.path is not None and dst.path is not None and Path(src.path).resolve() == Path(dst.path).resolve()) \
        or src.location == dst.location
    if same:
        raise StateError(f"the source and the destination are the same ({src.location})",
                         hint="Name another store with --from / --to")
