"""Inventory and cost as pandas DataFrames: what runs where, what it costs, which fleet owns it, and what
has been forgotten.

Every function takes an optional ``session`` (a :class:`vmops.session.Session`; one is made from the
environment and closed again when omitted). Provider reads fan out concurrently through the session; a
provider that fails does not raise: a :class:`InventoryWarning` is issued and the frame's
``attrs["missing_providers"]`` lists it (``attrs["errors"]`` maps it to the error sentence).

This module imports pandas at import time; the CLI imports it only inside the commands that print a
frame (``vm list --output csv``, ``vm cost``), so ``vm --help`` stays fast.

Prices follow the one price rule (vmops/pricing.py): each instance and offer row carries ``price_per_hour``
(marginal USD per VM-hour; 0 for reserved capacity, which is prepaid), ``price_source`` (the exact source),
``price_origin`` (``provider``: the provider's API; ``catalogue``: vmops' dated list-price table, used where
the API has no price, e.g. Nebius; ``reservation``: prepaid; ``unknown``), ``prepaid``,
``commitment_per_hour`` (a reservation's own price, where known) and ``list_price_per_hour`` (the on-demand
price of the same type).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

import pandas as pd

from vmops.errors import VmopsError
from vmops.fleet.ownership import claimed as ownership_claimed
from vmops.model import BILLED_STATES, GpuShape, Instance, Offer, Reservation, State
from vmops.pricing import PriceOrigin, ReservationIndex, instance_price, offer_price, reservation_index
from vmops.providers.base import Provider
from vmops.session import FanOut, Session
from vmops.state.records import LIVE, FleetRecord, MemberRecord, MemberStatus

HOURS_PER_DAY = 24.0
#: Average hours in a month (365 * 24 / 12), the usual cloud-billing convention.
HOURS_PER_MONTH = 730.0

ORIGIN_PROVIDER = PriceOrigin.PROVIDER.value
ORIGIN_CATALOGUE = PriceOrigin.CATALOGUE.value
ORIGIN_RESERVATION = PriceOrigin.RESERVATION.value
ORIGIN_UNKNOWN = PriceOrigin.UNKNOWN.value
NO_FLEET = "(none)"

INSTANCE_COLUMNS: tuple[str, ...] = (
    "provider", "id", "name", "gpu", "gpu_model", "gpus", "region", "state", "native_state", "native_type",
    "public_ip", "private_ip", "reserved", "reservation_id", "billing", "billed", "price_per_hour",
    "price_source", "price_origin", "prepaid", "commitment_per_hour", "list_price_per_hour", "created_at", "labels", "fleet", "member_status", "claimed_fleet", "orphan",
)
COST_GROUPS: tuple[str, ...] = ("provider", "gpu", "fleet", "billing")


class InventoryWarning(UserWarning):
    """A provider could not be read; the frame lacks its rows (see ``attrs["missing_providers"]``)."""


# ---- plumbing -----------------------------------------------------------------------------------------
@contextmanager
def _session(session: Session | None) -> Iterator[Session]:
    if session is not None:
        yield session
        return
    s = Session()
    try:
        yield s
    finally:
        s.close()


def _shape(gpu: str | GpuShape | None) -> GpuShape | None:
    if gpu is None or gpu == "":
        return None
    return gpu if isinstance(gpu, GpuShape) else GpuShape.parse(str(gpu))


def _report_failures(result: FanOut[Any], what: str) -> dict[str, str]:
    errors = result.reasons()
    for p, msg in errors.items():
        warnings.warn(f"{p}: {what} failed, its rows are missing: {msg}", InventoryWarning, stacklevel=3)
    return errors


def _mark(df: pd.DataFrame, errors: dict[str, str]) -> pd.DataFrame:
    df.attrs["missing_providers"] = sorted(errors)
    df.attrs["errors"] = dict(errors)
    return df


def missing_providers(df: pd.DataFrame) -> list[str]:
    """Providers whose rows are missing from a frame made here (they failed to answer)."""
    return list(df.attrs.get("missing_providers", []))


def claimed_fleet(inst: Instance, *, labelled: bool, store_id: str | frozenset[str] | None) -> str | None:
    """The fleet of this installation a VM belongs to by the ownership rule (vmops.fleet.ownership);
    with no state store yet, nothing on a labelled provider is ours."""
    return ownership_claimed(inst, labelled=labelled, store_id=store_id).fleet


def _labelled(session: Session | None, provider: str) -> bool:
    if session is None or provider not in session.config.providers:
        return False
    return session.provider(provider).capabilities.labels


# ---- the state store (read-only here) ----------------------------------------------------------------
def _records(session: Session) -> tuple[list[FleetRecord], dict[int, list[MemberRecord]], frozenset[str] | None]:
    """Fleets and their members from the configured state store (the SQLite file, or VMOPS_DB_URL), and
    its identity; nothing if vmops has never written an SQLite one."""
    from vmops.state import store_exists, store_for

    config = session.config
    if not store_exists(config):
        return [], {}, None

    store = store_for(config)
    try:
        fleets = store.list_fleets()
        members = store.members_by_fleet()
        return fleets, {f.id: members.get(f.id, []) for f in fleets}, store.identities
    finally:
        store.close()


def _membership(session: Session) -> tuple[dict[tuple[str, str], tuple[str, MemberRecord]], frozenset[str] | None]:
    fleets, members, store_id = _records(session)
    names = {f.id: f.name for f in fleets}
    index: dict[tuple[str, str], tuple[str, MemberRecord]] = {}
    for fid, ms in members.items():
        for m in ms:
            if m.instance_id:
                index[(m.provider, m.instance_id)] = (names[fid], m)
    return index, store_id


# ---- instances ---------------------------------------------------------------------------------------
def _display_region(session: Session | None, inst: Instance) -> str:
    if inst.region:
        return inst.region
    if session is not None and inst.provider in session.config.providers:
        return session.config.settings(inst.provider).region or "-"
    return "-"


def instances_frame(
    instances: Sequence[Instance],
    session: Session | None = None,
    missing: dict[str, str] | None = None,
    reservations: Sequence[Reservation] | None = None,
) -> pd.DataFrame:
    """One row per instance: the normalized fields, billing, price with its provenance, and fleet
    membership from the state store (``fleet``/``member_status``) next to what the VM's name or label
    claims (``claimed_fleet``); ``orphan`` is True for a VM that claims a fleet the record does not
    give it. ``reservations`` give reserved VMs their commitment; when None and a ``session`` is given,
    those of the providers with reserved VMs are read (a failure leaves the commitment unknown)."""
    index: dict[tuple[str, str], tuple[str, MemberRecord]] = {}
    store_id: frozenset[str] | None = None
    if session is not None:
        index, store_id = _membership(session)
        if reservations is None:
            holders = sorted({i.provider for i in instances if i.reserved})
            reservations = session.reservations(holders).flat() if holders else []
    labelled = {p: _labelled(session, p) for p in {i.provider for i in instances}}
    rsv: ReservationIndex = reservation_index(reservations or ())
    rows = []
    for i in instances:
        price = instance_price(i, rsv)
        rec = index.get((i.provider, i.id))
        fleet = rec[0] if rec else None
        status = rec[1].status.value if rec else None
        claim = claimed_fleet(i, labelled=labelled[i.provider], store_id=store_id)
        recorded_live = rec is not None and rec[1].status in LIVE
        rows.append({
            "provider": i.provider,
            "id": i.id,
            "name": i.name,
            "gpu": str(i.gpu) if i.gpu else None,
            "gpu_model": i.gpu.model if i.gpu else None,
            "gpus": i.gpu.count if i.gpu else 0,
            "region": _display_region(session, i),
            "state": i.state.value,
            "native_state": i.native_state,
            "native_type": i.native_type,
            "public_ip": i.public_ip,
            "private_ip": i.private_ip,
            "reserved": bool(i.reserved),
            "reservation_id": i.reservation_id,
            "billing": price.billing,
            "billed": i.state in BILLED_STATES,
            **price.to_dict(),
            "created_at": i.created_at,
            "labels": ",".join(f"{k}={v}" for k, v in sorted(i.labels.items())),
            "fleet": fleet,
            "member_status": status,
            "claimed_fleet": claim,
            "orphan": claim is not None and not recorded_live,
        })
    df = pd.DataFrame(rows, columns=list(INSTANCE_COLUMNS))
    for col in ("price_per_hour", "commitment_per_hour", "list_price_per_hour"):
        df[col] = df[col].astype("float64")
    df["gpus"] = df["gpus"].astype("int64")
    for col in ("reserved", "billed", "orphan", "prepaid"):
        df[col] = df[col].astype(bool)
    return _mark(df, missing or {})


def instances(session: Session | None = None, providers: str | Iterable[str] | None = None) -> pd.DataFrame:
    """Every instance at every configured provider (fetched concurrently), one row each.

    A provider that fails yields an :class:`InventoryWarning` and is listed in
    ``attrs["missing_providers"]``; the other providers' rows are still there.
    """
    with _session(session) as s:
        names = s.provider_names(providers)
        held: list[Reservation] = []

        def read(p: Provider) -> list[Instance]:
            found = p.list_instances()
            if any(i.reserved for i in found):  # commitments of reserved VMs; unknown if this read fails
                try:
                    held.extend(p.reservations())
                except VmopsError:
                    pass
            return found

        result: FanOut[Instance] = s.fan_out(read, names)
        errors = _report_failures(result, "listing instances")
        ordered = [i for n in names for i in result.results.get(n, [])]
        return instances_frame(ordered, session=s, missing=errors, reservations=held)


# ---- fleets and members ------------------------------------------------------------------------------
MEMBER_COLUMNS: tuple[str, ...] = (
    "fleet", "seq", "name", "provider", "id", "region", "native_type", "status", "state", "reserved",
    "reservation_id", "price_per_hour", "public_ip", "created_at", "last_seen_at", "last_error",
)
OBSERVED_COLUMNS: tuple[str, ...] = ("exists", "observed_state", "observed_price_per_hour")


def _member_rows(fleet: FleetRecord, ms: Sequence[MemberRecord]) -> list[dict[str, object]]:
    return [{"fleet": fleet.name, "seq": m.seq, **m.to_dict()} for m in ms]


def _observe(df: pd.DataFrame, s: Session) -> pd.DataFrame:
    """Add what the providers say now about each recorded member (read-only: the record is untouched;
    ``vm fleet status``/``reconcile`` write it). ``exists`` is NA where the provider did not answer."""
    providers = sorted(set(df["provider"])) if len(df) else []
    result = s.instances(providers)
    errors = _report_failures(result, "listing instances")
    by_id = {(i.provider, i.id): i for i in result.flat()}
    by_name = {(i.provider, i.name): i for i in result.flat()}
    exists, states, prices = [], [], []
    for row in df.itertuples(index=False):
        if row.provider in result.failures:
            exists.append(pd.NA), states.append(None), prices.append(None)
            continue
        has_id = isinstance(row.id, str) and row.id != ""
        inst = by_id.get((row.provider, row.id)) if has_id else by_name.get((row.provider, row.name))
        exists.append(inst is not None)
        states.append(inst.state.value if inst else State.DELETED.value)
        prices.append(instance_price(inst).per_hour if inst else None)
    df["exists"] = pd.array(exists, dtype="boolean")
    df["observed_state"] = states
    df["observed_price_per_hour"] = pd.array(prices, dtype="Float64")
    return _mark(df, errors)


def members(fleet: str | None = None, session: Session | None = None, refresh: bool = False) -> pd.DataFrame:
    """Recorded members of ``fleet`` (every fleet's if None), from the state store. With ``refresh``,
    also ``exists``/``observed_state``/``observed_price_per_hour`` from the providers, read now."""
    with _session(session) as s:
        fleets, ms, _ = _records(s)
        if fleet is not None:
            fleets = [f for f in fleets if f.name == fleet]
            if not fleets:
                from vmops.errors import NotFound

                raise NotFound(f"there is no fleet named {fleet!r}", hint="List fleets with vmops.inventory.fleets()")
        rows = [r for f in fleets for r in _member_rows(f, ms.get(f.id, []))]
        df = pd.DataFrame(rows, columns=list(MEMBER_COLUMNS))
        df["price_per_hour"] = df["price_per_hour"].astype("float64")
        if refresh:
            return _observe(df, s)
        return _mark(df, {})


FLEET_COLUMNS: tuple[str, ...] = (
    "name", "gpu", "count", "min", "policy", "state", "members", "running", "price_per_hour", "created_at",
    "updated_at", "last_error",
)


def fleets(session: Session | None = None, refresh: bool = False) -> pd.DataFrame:
    """Recorded fleets with member counts and hourly price. ``members`` counts members whose VM may exist;
    ``running`` those recorded (or, with ``refresh``, observed) running; ``price_per_hour`` sums them."""
    with _session(session) as s:
        recs, _, _ = _records(s)
        mdf = members(session=s, refresh=refresh)
        rows = []
        for f in recs:
            mine = mdf[mdf["fleet"] == f.name]
            live = mine[mine["status"].isin([st.value for st in LIVE])]
            if refresh:
                running = mine[mine["observed_state"] == State.RUNNING.value]
                price = running["observed_price_per_hour"].astype("float64").sum()
            else:
                running = live[live["state"] == State.RUNNING.value]
                price = running["price_per_hour"].sum()
            rows.append({**f.to_dict(), "members": len(live), "running": len(running),
                         "price_per_hour": round(float(price), 4)})
        df = pd.DataFrame(rows, columns=list(FLEET_COLUMNS))
        df["price_per_hour"] = df["price_per_hour"].astype("float64")
        return _mark(df, dict(mdf.attrs.get("errors", {})))


# ---- capacity and offers -----------------------------------------------------------------------------
OFFER_COLUMNS: tuple[str, ...] = (
    "provider", "gpu", "native_type", "region", "billing", "reservation_id", "available", "has_capacity",
    "price_per_hour", "price_per_gpu_hour", "price_source", "price_origin", "prepaid", "commitment_per_hour",
    "list_price_per_hour",
)


def _offer_row(o: Offer) -> dict[str, object]:
    price = offer_price(o)
    has = o.has_capacity if o.has_capacity is not None else (None if o.available is None else o.available > 0)
    row: dict[str, object] = {
        "provider": o.provider,
        "gpu": str(o.gpu),
        "native_type": o.native_type,
        "region": o.region or "-",
        "billing": price.billing,
        "reservation_id": o.reservation_id,
        "available": o.available,
        "has_capacity": has,
        **price.to_dict(),
    }
    row["price_per_gpu_hour"] = None if price.per_hour is None else round(price.per_hour / o.gpu.count, 4)
    return {k: row[k] for k in OFFER_COLUMNS}


def offers(gpu: str | GpuShape | None = None, session: Session | None = None,
           providers: str | Iterable[str] | None = None) -> pd.DataFrame:
    """Every offer now: per provider, region, shape and billing (on-demand or one reservation), with the
    VM count where the provider reports counts (``available``; NA where it only says yes/no or cannot say)
    and the price with its provenance."""
    shape = _shape(gpu)
    with _session(session) as s:
        result = s.offers(shape, s.provider_names(providers))
        errors = _report_failures(result, "reading offers")
        rows = [_offer_row(o) for o in result.flat() if shape is None or o.gpu == shape]
        df = pd.DataFrame(rows, columns=list(OFFER_COLUMNS))
        df["available"] = pd.array(df["available"].tolist(), dtype="Int64")
        df["has_capacity"] = pd.array(df["has_capacity"].tolist(), dtype="boolean")
        for col in ("price_per_hour", "price_per_gpu_hour", "commitment_per_hour", "list_price_per_hour"):
            df[col] = df[col].astype("float64")
        df["prepaid"] = df["prepaid"].astype(bool)
        return _mark(df, errors)


CAPACITY_COLUMNS: tuple[str, ...] = (
    "provider", "region", "gpu", "on_demand_vms", "reserved_vms", "capacity", "cheapest_per_hour",
    "cheapest_per_gpu_hour",
)


def capacity(gpu: str | GpuShape | None = None, session: Session | None = None,
             providers: str | Iterable[str] | None = None) -> pd.DataFrame:
    """What each provider and region can supply now, per shape: on-demand and reserved VM counts (NA where
    the provider gives no count), ``capacity`` = yes/no/unknown, and the cheapest price per VM- and GPU-hour."""
    off = offers(gpu, session=session, providers=providers)
    rows = []
    for (prov, region, g), grp in off.groupby(["provider", "region", "gpu"], sort=True):
        od, rs = grp[grp["billing"] == "on-demand"], grp[grp["billing"] == "reserved"]

        def total(part: pd.DataFrame) -> object:
            if part.empty:
                return 0
            return pd.NA if part["available"].isna().any() else int(part["available"].sum())

        has = grp["has_capacity"]
        verdict = "yes" if has.fillna(False).any() else ("unknown" if has.isna().any() else "no")
        priced = grp[grp["has_capacity"].fillna(True)] if verdict != "no" else grp
        rows.append({
            "provider": prov, "region": region, "gpu": g,
            "on_demand_vms": total(od), "reserved_vms": total(rs), "capacity": verdict,
            "cheapest_per_hour": priced["price_per_hour"].min(),
            "cheapest_per_gpu_hour": priced["price_per_gpu_hour"].min(),
        })
    df = pd.DataFrame(rows, columns=list(CAPACITY_COLUMNS))
    for col in ("on_demand_vms", "reserved_vms"):
        df[col] = pd.array(df[col].tolist(), dtype="Int64")
    for col in ("cheapest_per_hour", "cheapest_per_gpu_hour"):
        df[col] = df[col].astype("float64")
    return _mark(df, dict(off.attrs.get("errors", {})))


# ---- cost --------------------------------------------------------------------------------------------
COST_VALUE_COLUMNS: tuple[str, ...] = (
    "vms", "gpus", "prepaid_vms", "unpriced_vms", "hourly", "daily", "monthly", "commitment_hourly",
    "price_origins",
)


def cost(
    frame: pd.DataFrame | None = None,
    by: str | Sequence[str] = COST_GROUPS,
    session: Session | None = None,
    providers: str | Iterable[str] | None = None,
    include_stopped: bool = False,
) -> pd.DataFrame:
    """Hourly, daily (x24) and monthly (x730) cost of what bills now, grouped by any of ``provider``,
    ``gpu``, ``fleet``, ``billing`` (reserved vs on-demand), ``region``, ``state``.

    ``frame`` is an :func:`instances` frame (fetched when omitted). Only VMs in a billed state count
    (stopped ones do not unless ``include_stopped``). Sums are of the marginal price (vmops/pricing.py):
    ``prepaid_vms`` run on reserved capacity at $0 per hour, whose reservations' own price is summed apart in
    ``commitment_hourly`` where known; ``unpriced_vms`` counts VMs with no known price (not in the sums);
    ``price_origins`` says where the prices came from (``provider``, ``catalogue``, ``reservation``).
    """
    keys = [by] if isinstance(by, str) else list(by)
    if frame is None:
        frame = instances(session=session, providers=providers)
    bad = [k for k in keys if k not in frame.columns]
    if bad:
        raise ValueError(f"cannot group cost by {', '.join(bad)}; use any of provider, gpu, fleet, billing, region, state")
    df = frame if include_stopped else frame[frame["billed"]]
    df = df.assign(fleet=df["fleet"].fillna(NO_FLEET), gpu=df["gpu"].fillna("-"))
    rows = []
    if len(df):
        for key, grp in df.groupby(keys, sort=True, dropna=False) if keys else [((), df)]:
            key = key if isinstance(key, tuple) else (key,)
            hourly = float(grp["price_per_hour"].sum(min_count=0))
            rows.append({
                **dict(zip(keys, key)),
                "vms": len(grp),
                "gpus": int(grp["gpus"].sum()),
                "prepaid_vms": int(grp["prepaid"].sum()),
                "unpriced_vms": int(grp["price_per_hour"].isna().sum()),
                "hourly": round(hourly, 4),
                "daily": round(hourly * HOURS_PER_DAY, 2),
                "monthly": round(hourly * HOURS_PER_MONTH, 2),
                "commitment_hourly": round(float(grp["commitment_per_hour"].sum(min_count=0)), 4),
                "price_origins": ",".join(sorted(set(grp["price_origin"]))),
            })
    out = pd.DataFrame(rows, columns=keys + list(COST_VALUE_COLUMNS))
    for col in ("hourly", "daily", "monthly", "commitment_hourly"):
        out[col] = out[col].astype("float64")
    return _mark(out, dict(frame.attrs.get("errors", {})))


def total_cost(frame: pd.DataFrame) -> dict[str, float]:
    """Totals of a :func:`cost` frame: ``{"hourly", "daily", "monthly"}``."""
    return {k: round(float(frame[k].sum()), 4) for k in ("hourly", "daily", "monthly")}


# ---- orphans -----------------------------------------------------------------------------------------
ORPHAN_COLUMNS: tuple[str, ...] = (
    "kind", "provider", "id", "name", "fleet", "state", "member_status", "price_per_hour", "reason",
)
UNRECORDED = "unrecorded_vm"  # a VM that looks like a fleet member but no recorded fleet has it
MISSING = "missing_vm"  # a recorded member whose VM the provider no longer has


def orphans(session: Session | None = None, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """The orphan view, both directions:

    * ``unrecorded_vm``: a VM whose name (``vmops-<fleet>-NNN``) or ``vmops-fleet`` label says it belongs
      to a fleet, but no recorded fleet holds it as a live member (a crash between the provider's answer
      and the record's update, a deleted state file, or a fleet record destroyed while the VM lived on).
      These bill; ``vm fleet reconcile`` adopts the ones whose fleet is recorded.
    * ``missing_vm``: a recorded member that may exist (status requested/accepted/running/destroying/
      destroy_failed) but its provider, which did answer, has no such VM (deleted outside vmops, or a create
      that never happened).
    """
    with _session(session) as s:
        inv = frame if frame is not None else instances(session=s)
        answered = set(s.provider_names()) - set(missing_providers(inv))
        fleet_recs, ms, _ = _records(s)
        recorded = {f.name: f for f in fleet_recs}
        rows: list[dict[str, object]] = []
        for r in inv[inv["orphan"]].itertuples(index=False):
            status = r.member_status if isinstance(r.member_status, str) else None
            f = recorded.get(r.claimed_fleet)
            if f is None:
                why = f"fleet {r.claimed_fleet!r} is not recorded in the state store"
            elif f.state.value == "destroyed":
                why = f"fleet {r.claimed_fleet!r} is recorded as destroyed but this VM still exists"
            elif status:
                why = f"recorded as {status} in fleet {r.fleet!r} but the VM still exists"
            else:
                why = (f"fleet {r.claimed_fleet!r} has no record of this VM (e.g. a crash before its id was "
                       f"recorded); `vm fleet reconcile {r.claimed_fleet}` adopts it")
            rows.append({"kind": UNRECORDED, "provider": r.provider, "id": r.id, "name": r.name,
                         "fleet": r.claimed_fleet, "state": r.state, "member_status": status,
                         "price_per_hour": r.price_per_hour, "reason": why})
        present_ids = set(zip(inv["provider"], inv["id"]))
        present_names = set(zip(inv["provider"], inv["name"]))
        for f in fleet_recs:
            for m in ms.get(f.id, []):
                if m.status not in LIVE or m.provider not in answered:
                    continue
                if m.instance_id and (m.provider, m.instance_id) in present_ids:
                    continue
                if not m.instance_id and (m.provider, m.name) in present_names:
                    continue  # the VM is there, listed above as unrecorded
                if m.instance_id:
                    why = f"recorded as {m.status.value} but {m.provider} no longer has instance {m.instance_id}"
                else:
                    why = f"create was requested but {m.provider} has no VM named {m.name}"
                rows.append({"kind": MISSING, "provider": m.provider, "id": m.instance_id, "name": m.name,
                             "fleet": f.name, "state": State.DELETED.value, "member_status": m.status.value,
                             "price_per_hour": m.price_per_hour, "reason": why})
        df = pd.DataFrame(rows, columns=list(ORPHAN_COLUMNS))
        df["price_per_hour"] = df["price_per_hour"].astype("float64")
        return _mark(df, dict(inv.attrs.get("errors", {})))


__all__ = [
    "BILLED_STATES", "HOURS_PER_DAY", "HOURS_PER_MONTH", "InventoryWarning", "MemberStatus", "capacity",
    "claimed_fleet", "cost", "fleets", "instances", "instances_frame", "members", "missing_providers", "offers",
    "orphans", "total_cost",
]
