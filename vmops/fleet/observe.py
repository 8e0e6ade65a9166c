"""Observe: read a fleet's record and what its providers report now, in one value (no changes anywhere).

Also how a provider's report is written onto a member record (``status_for``, ``member_fields``). How a
fleet's health is counted from its members' states is vmops.fleet.health.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Mapping

from vmops.errors import VmopsError
from vmops.fleet.ownership import claim
from vmops.model import Instance, State
from vmops.state import LIVE, FleetRecord, MemberRecord, MemberStatus

if TYPE_CHECKING:
    from vmops.providers.base import Provider


def status_for(state: State) -> MemberStatus:
    """vmops' member status for a VM the provider reports in ``state`` (made: running, stopped or between)."""
    if state is State.RUNNING or state in (State.STOPPED, State.STOPPING, State.STARTING):
        return MemberStatus.RUNNING
    if state is State.DELETING:
        return MemberStatus.DESTROYING
    if state is State.DELETED:
        return MemberStatus.GONE
    return MemberStatus.ACCEPTED


def member_fields(inst: Instance) -> dict[str, object]:
    return {
        "state": inst.state,
        "region": inst.region,
        "reserved": inst.reserved,
        "reservation_id": inst.reservation_id,
        "public_ip": inst.public_ip,
    }


@dataclass
class Observation:
    """A fleet's record plus its providers' instance lists, read at one moment."""

    fleet: FleetRecord
    members: list[MemberRecord]
    store_id: str | frozenset[str]  # this store's identity (or identities: its own and imported stores')
    labelled: dict[str, bool]  # provider -> its VMs carry labels
    listings: dict[str, list[Instance]] = field(default_factory=dict)  # providers that answered
    failures: dict[str, str] = field(default_factory=dict)  # provider -> why it was not listed (no name prefix)
    #: (provider, id) of listed VMs that claim this fleet but are recorded for another fleet
    recorded_elsewhere: frozenset[tuple[str, str]] = frozenset()
    _index: dict[str, tuple[list[Instance], int, dict[str, Instance]]] = field(default_factory=dict, repr=False,
                                                                          compare=False)

    @classmethod
    def joined(cls, fleet: FleetRecord, parts: list["Observation"]) -> "Observation":
        """One Observation from parts taken one provider each (a destroy's lanes)."""
        obs = cls(fleet, [m for p in parts for m in p.members], parts[0].store_id if parts else "", {})
        for p in parts:
            obs.labelled.update(p.labelled)
            obs.listings.update(p.listings)
            obs.failures.update(p.failures)
            obs.recorded_elsewhere |= p.recorded_elsewhere
        return obs

    def listed(self, provider: str) -> bool:
        return provider in self.listings

    def instance(self, m: MemberRecord) -> Instance | None:
        """The VM of a recorded member as its provider lists it now (None: gone, or not listed)."""
        if not m.instance_id:
            return None
        return self.by_id(m.provider).get(m.instance_id)

    def by_id(self, provider: str) -> dict[str, Instance]:
        """``provider``'s listed VMs that are not deleted, by id; rebuilt when its list changed (a fleet of 512
        asks once per member: a scan each time would be quadratic)."""
        listing = self.listings.get(provider, [])
        cached = self._index.get(provider)
        if cached is None or cached[0] is not listing or cached[1] != len(listing):
            index: dict[str, Instance] = {}
            for i in listing:
                if i.state is not State.DELETED:
                    index.setdefault(i.id, i)
            cached = self._index[provider] = (listing, len(listing), index)
        return cached[2]

    def ours(self, provider: str) -> list[Instance]:
        """Listed VMs at ``provider`` that belong to this fleet by the ownership rule."""
        return [i for i in self.listings.get(provider, ()) if i.state is not State.DELETED
                and claim(i, labelled=self.labelled.get(provider, False), store_id=self.store_id).fleet
                == self.fleet.name]


def observe(fleet: FleetRecord, members: list[MemberRecord], *, store_id: str | frozenset[str],
            provider: Callable[[str], Provider], recorded: Callable[[str, str], bool],
            providers: Iterable[str] | None = None,
            listed: Mapping[str, list[Instance]] | None = None,
            unlisted: Mapping[str, str] | None = None,
            failed: Callable[[str, VmopsError], None] = lambda _p, _e: None) -> Observation:
    """List (concurrently, once each) every provider that was ever asked to make a member of ``fleet``
    (write-ahead: no other provider can hold one), plus ``providers``. ``recorded(provider, id)``: is a VM
    recorded for any fleet (to tell another fleet's member from an unrecorded one). ``listed``: lists already
    taken (before the record was read) that stand in for listing those providers again; ``unlisted``: why
    such a list failed (those providers are not asked again). ``failed(provider, error)``: told of each
    provider that could not be listed or looked up here (the session's breaker remembers one that did not
    answer)."""
    listed = listed or {}
    unlisted = unlisted or {}
    names = sorted({m.provider for m in members} | set(providers or ()))
    labelled: dict[str, bool] = {}
    obs = Observation(fleet, members, store_id, labelled)

    def fetch(n: str) -> tuple[str, list[Instance] | str]:
        try:
            adapter = provider(n)
            labelled[n] = adapter.capabilities.labels
            if n in unlisted:
                return n, unlisted[n]
            return n, list(listed[n]) if n in listed else adapter.list_instances()
        except VmopsError as e:
            failed(n, e)
            return n, e.render(named=False)

    if names:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="vmops-observe") as pool:
            for n, out in pool.map(fetch, names):
                if isinstance(out, str):
                    obs.failures[n] = out
                else:
                    obs.listings[n] = out
    _confirm_missing(obs, provider, failed)
    mine = {(m.provider, m.instance_id) for m in members if m.instance_id}
    elsewhere = {(p, i.id) for p in obs.listings for i in obs.ours(p)
                 if (p, i.id) not in mine and recorded(p, i.id)}
    obs.recorded_elsewhere = frozenset(elsewhere)
    return obs


def _confirm_missing(obs: Observation, provider: Callable[[str], Provider],
                     failed: Callable[[str, VmopsError], None]) -> None:
    """Look up (``Provider.lookup``) every live member its provider's listing did not show, before anything
    concludes it is gone. A provider that then fails counts as not listed."""
    for m in obs.members:
        if not (m.instance_id and m.status in LIVE and obs.listed(m.provider) and obs.instance(m) is None):
            continue
        try:
            found = provider(m.provider).lookup(m.instance_id)
        except VmopsError as e:
            failed(m.provider, e)
            obs.failures[m.provider] = e.render(named=False)
            del obs.listings[m.provider]
            continue
        if found is not None:
            obs.listings[m.provider].append(found)
