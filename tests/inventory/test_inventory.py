"""The inventory frames against the three simulators: instances, cost, capacity/offers, fleets/members,
a provider down, and the orphan view after a simulated crash."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from vmops.fleet.ownership import labels_for

from vmops import inventory as inv
from vmops.catalogue import PROVIDERS
from vmops.fleet.manager import FleetManager, FleetSpec
from vmops.model import GpuShape
from vmops.sim.common import Fault

from tests.conftest import both_dialects

#: every test here runs against both dialects' simulators (``sims``/``session`` follow ``dialect``)
pytestmark = both_dialects


def _names_at(sim_session, provider: str) -> set[str]:
    return {i.name for i in sim_session.provider(provider).list_instances()}


#: where Crusoe's on-demand prices come from: its reference API's vm types; the cloud API has none (the catalogue)
CRUSOE_PRICE_ORIGIN = {"reference": "provider", "cloud": "catalogue"}


def test_instances_one_row_per_vm_everywhere(sims, session, seeded, dialect):
    df = inv.instances(session)
    assert list(df.columns) == list(inv.INSTANCE_COLUMNS)
    assert inv.missing_providers(df) == []
    for p in ("crusoe", "lambda", "nebius"):
        assert set(df.loc[df["provider"] == p, "name"]) == _names_at(session, p)
        assert (df["provider"] == p).sum() >= 1
    assert df["id"].is_unique
    assert set(df["state"]) <= {"creating", "running", "stopping", "stopped", "starting", "deleting", "deleted",
                                "error", "unknown"}
    # Nebius' API has no prices: its on-demand rows carry the catalogue's dated list price, and say so.
    neb = df[(df["provider"] == "nebius") & ~df["reserved"]]
    assert (neb["price_origin"] == "catalogue").all()
    for row in neb.itertuples():
        listed = PROVIDERS["nebius"].type_named(row.native_type)
        assert row.price_per_hour == pytest.approx(listed.list_price_per_hour)
        assert "nebius published list price" in row.price_source
        assert row.region == "-"
    assert (df.loc[df["provider"] == "nebius", "region"] == "-").all()
    crusoe_od = df.loc[(df["provider"] == "crusoe") & ~df["reserved"], "price_origin"]
    assert (crusoe_od == CRUSOE_PRICE_ORIGIN[dialect]).all()
    # Reserved VMs (see ``seeded``) are prepaid: $0 per hour, the reservation's own price apart where the provider
    # gives one, the type's list price for comparison.
    rsv = df[df["reserved"]].set_index("provider")
    assert set(rsv.index) == set(seeded)
    assert (rsv["price_per_hour"] == 0).all() and rsv["prepaid"].all()
    assert (rsv["price_origin"] == "reservation").all()
    for p, commitment in seeded.items():
        row = rsv.loc[p]
        if commitment is None:
            assert pd.isna(row["commitment_per_hour"])
        else:
            assert row["commitment_per_hour"] == pytest.approx(commitment)
        listed = PROVIDERS[p].type_named(row["native_type"])
        assert (pd.isna(row["list_price_per_hour"]) if listed is None
                else row["list_price_per_hour"] == pytest.approx(listed.list_price_per_hour))
    assert (~df.loc[~df["reserved"], "prepaid"]).all()
    assert df["price_per_hour"].notna().all()
    assert (df["billing"] == df["reserved"].map({True: "reserved", False: "on-demand"})).all()


@pytest.mark.parametrize("down", ["crusoe", "lambda", "nebius"])
def test_provider_down_is_a_warning_and_an_attribute(sims, session, seeded, dialect, down):
    sims[down].faults.add(Fault(endpoint="*", kind="error", status=503, grpc_code="UNAVAILABLE"))
    with pytest.warns(inv.InventoryWarning, match=down):
        df = inv.instances(session)
    assert inv.missing_providers(df) == [down]
    why = df.attrs["errors"][down]  # keyed by the provider; the sentence does not name it again
    assert why and not why.startswith(f"{down}:"), why
    assert down not in set(df["provider"])
    up = {"crusoe", "lambda", "nebius"} - {down}
    assert set(df["provider"]) == up
    # the attribute follows the frame into the cost table, and the orphan view does not call the down
    # provider's recorded members missing
    assert inv.missing_providers(inv.cost(df)) == [down]
    with pytest.warns(inv.InventoryWarning, match=down):
        off = inv.offers("h100:1", session=session)
    assert inv.missing_providers(off) == [down] and set(off["provider"]) == up


def test_orphans_after_a_simulated_crash(sims, session, crashed):
    df = inv.instances(session)
    by_name = df.set_index("name")
    rec = by_name.loc[crashed.recorded.name]
    assert rec["fleet"] == crashed.name and rec["member_status"] == "running" and not rec["orphan"]
    lost = by_name.loc[crashed.unrecorded.name]
    assert pd.isna(lost["fleet"]) and lost["claimed_fleet"] == crashed.name and lost["orphan"]
    assert crashed.vanished_name not in set(df["name"])

    orphans = inv.orphans(session, frame=df)
    got = {(r.kind, r.provider, r.name) for r in orphans.itertuples()}
    assert got == {
        (inv.UNRECORDED, "lambda", crashed.unrecorded.name),
        (inv.MISSING, "nebius", crashed.vanished_name),
    }
    unrec = orphans[orphans["kind"] == inv.UNRECORDED].iloc[0]
    assert unrec["id"] == crashed.unrecorded.id and unrec["price_per_hour"] > 0
    assert "reconcile" in unrec["reason"]
    missing = orphans[orphans["kind"] == inv.MISSING].iloc[0]
    assert missing["id"] == crashed.vanished_id and "no longer has" in missing["reason"]

    # members/fleets: the record as it is, and refreshed (read-only) from the providers
    m = inv.members(crashed.name, session=session, refresh=True).set_index("name")
    assert m.loc[crashed.recorded.name, "exists"] == True  # noqa: E712 (nullable boolean)
    assert m.loc[crashed.unrecorded.name, "exists"] == True  # found by its name  # noqa: E712
    assert m.loc[crashed.vanished_name, "exists"] == False  # noqa: E712
    assert m.loc[crashed.vanished_name, "observed_state"] == "deleted"
    f = inv.fleets(session).set_index("name").loc[crashed.name]
    assert f["state"] == "creating" and f["members"] == 3 and f["running"] == 2
    fr = inv.fleets(session, refresh=True).set_index("name").loc[crashed.name]
    assert fr["running"] == 2  # crusoe (recorded) + lambda (found by name); nebius is gone
    known = [i.price_per_hour for i in (crashed.recorded, crashed.unrecorded) if i.price_per_hour is not None]
    assert fr["price_per_hour"] == pytest.approx(sum(known))  # Crusoe's cloud 1 x H100 has no known price

    # The fleet manager's reconcile agrees with the orphan view: afterwards there is nothing to report.
    with FleetManager(session) as mgr:
        mgr.reconcile(crashed.name)
        assert inv.orphans(session).empty
        mgr.destroy(crashed.name)
    after = inv.instances(session)
    assert not after["name"].str.startswith(f"vmops-{crashed.name}-").any()
    assert inv.orphans(session, frame=after).empty


def test_unrecorded_fleet_and_label_ownership(sims, session):
    """A VM that is a fleet's by the ownership rule but has no record (e.g. a lost state file) is an orphan.
    On Nebius (labels) the name and both labels must agree with this installation's store: a label alone,
    or another store's labels, make nobody's VM (vmops.fleet.ownership)."""
    from vmops.model import CreateRequest
    from vmops.state import Store

    store = Store(session.config.state_path)
    ident = store.identity
    store.close()
    neb = session.provider("nebius")
    a = session.provider("crusoe").create(CreateRequest(name="vmops-ghost-001", native_type="h100.1x"))
    b = neb.create(CreateRequest(name="worker", native_type="gpu-h100-sxm/1gpu-16vcpu-200gb",
                                 labels={"vmops-fleet": "ghost"}))
    c = neb.create(CreateRequest(name="vmops-ghost-002", native_type="gpu-h100-sxm/1gpu-16vcpu-200gb",
                                 labels={"vmops-fleet": "ghost", "vmops-store": "another-install"}))
    d = neb.create(CreateRequest(name="vmops-ghost-003", native_type="gpu-h100-sxm/1gpu-16vcpu-200gb",
                                 labels=labels_for("ghost", ident)))
    o = inv.orphans(session)
    assert set(zip(o["id"], o["fleet"])) == {(a.id, "ghost"), (d.id, "ghost")}
    assert b.id not in set(o["id"]) and c.id not in set(o["id"])
    assert o["reason"].str.contains("not recorded").all()
    assert set(o["kind"]) == {inv.UNRECORDED}


#: price origins of an h100:1 fleet spread over the three: Crusoe's cloud 1 x H100 product is the simulator's own
#: name (../shared/cloud-apis.md §6.6), which no catalogue prices
SPREAD_H100_1_ORIGINS = {"reference": {"provider", "catalogue"}, "cloud": {"unknown", "provider", "catalogue"}}


def test_cost_groups_match_the_plan_and_skip_stopped(sims, session, seeded, dialect):
    spec = FleetSpec(gpu=GpuShape.parse("h100:1"), count=3, name="costly", policy="spread")
    with FleetManager(session) as mgr:
        plan = mgr.plan(spec)
        result = mgr.create(spec)
    assert len(result.running) == 3
    df = inv.instances(session)
    by_fleet = inv.cost(df, by="fleet").set_index("fleet")
    assert by_fleet.loc["costly", "vms"] == 3 and by_fleet.loc["costly", "gpus"] == 3
    assert by_fleet.loc["costly", "hourly"] == pytest.approx(plan.total_per_hour)
    assert by_fleet.loc["costly", "daily"] == pytest.approx(24 * plan.total_per_hour, abs=0.01)
    assert by_fleet.loc["costly", "monthly"] == pytest.approx(730 * plan.total_per_hour, abs=0.01)
    assert set(by_fleet.loc["costly", "price_origins"].split(",")) == SPREAD_H100_1_ORIGINS[dialect]

    full = inv.cost(df)  # provider x gpu x fleet x billing
    assert list(full.columns[:4]) == ["provider", "gpu", "fleet", "billing"]
    total = inv.total_cost(full)["hourly"]
    assert total == pytest.approx(df.loc[df["billed"], "price_per_hour"].sum())
    for key in ("provider", "gpu", "billing"):
        assert inv.cost(df, by=key)["hourly"].sum() == pytest.approx(total)
    billing = inv.cost(df, by="billing").set_index("billing")
    assert billing.loc["reserved", "hourly"] == pytest.approx(df.loc[df["reserved"], "price_per_hour"].sum())

    # A stopped VM does not bill (unless asked to count it).
    member = next(m for m in result.members if m.provider == "nebius")  # stoppable, priced on both dialects
    session.provider("nebius").stop(member.instance_id)
    df2 = inv.instances(session)
    after = inv.cost(df2, by="fleet").set_index("fleet").loc["costly"]
    assert after["vms"] == 2
    assert after["hourly"] == pytest.approx(plan.total_per_hour - member.price_per_hour)
    assert inv.cost(df2, by="fleet", include_stopped=True).set_index("fleet").loc["costly", "vms"] == 3
    with pytest.raises(ValueError, match="cannot group"):
        inv.cost(df, by="colour")
    with FleetManager(session) as mgr:
        mgr.destroy("costly")


#: Crusoe's 8 x H100 on-demand counters at its simulator, per dialect: (attribute, native type)
CRUSOE_H100_8 = {"reference": ("on_demand", "h100.8x"), "cloud": ("capacity", "h100-80gb-sxm-ib.8x")}
#: the h100:8 reservations each dialect's simulators seed: id -> (commitment per hour, list price per hour) where
#: the test checks them (reference rsv-002: $22/GPU-hour x 8; cloud: $2.50/GPU-hour x 8, Crusoe's list $31.20)
RESERVED_H100_8 = {
    "reference": {"rsv-002": (176.0, 27.68), "rsv-lambda-001": None, "rsv-neb-001": None},
    "cloud": {"aaaaaaaa-0000-4000-8000-000000000001": (20.0, 31.20)},
}


def test_offers_and_capacity_match_the_providers(sims, session, dialect):
    attr, native = CRUSOE_H100_8[dialect]
    counts = {loc: n for (loc, t), n in getattr(sims["crusoe"], attr).items() if t == native}
    off = inv.offers("h100:8", session=session)
    assert set(off["gpu"]) == {"h100:8"}
    assert set(off["provider"]) == {"crusoe", "lambda", "nebius"}
    od = off[(off["provider"] == "crusoe") & (off["billing"] == "on-demand")].set_index("region")
    assert counts and set(od.index) == set(counts)
    for region, n in counts.items():
        assert od.loc[region, "available"] == n
    lam = off[(off["provider"] == "lambda") & (off["billing"] == "on-demand")]
    assert lam["available"].isna().all() and lam["has_capacity"].notna().all()
    neb = off[(off["provider"] == "nebius") & (off["billing"] == "on-demand")]
    assert len(neb) and (neb["price_origin"] == "catalogue").all()
    assert (off["price_per_gpu_hour"] * 8 - off["price_per_hour"]).abs().max() < 0.01
    # Reserved rows are prepaid, as in `vm capacity` and the plan: $0 per hour, commitment apart.
    rsv = off[off["billing"] == "reserved"].set_index("reservation_id")
    assert set(rsv.index) == set(RESERVED_H100_8[dialect])
    assert (rsv["price_per_hour"] == 0).all() and rsv["prepaid"].all() and (rsv["price_origin"] == "reservation").all()
    for rid, prices in RESERVED_H100_8[dialect].items():
        if prices is not None:
            assert tuple(rsv.loc[rid, ["commitment_per_hour", "list_price_per_hour"]]) == pytest.approx(prices)
    assert not off.loc[off["billing"] == "on-demand", "prepaid"].any()

    cap = inv.capacity("h100:8", session=session)
    region = max(counts, key=lambda r: (counts[r], r))
    row = cap[(cap["provider"] == "crusoe") & (cap["region"] == region)].iloc[0]
    assert row["on_demand_vms"] == counts[region]
    assert row["capacity"] in ("yes", "no")
    assert (row["capacity"] == "yes") == (row["on_demand_vms"] + row["reserved_vms"] > 0)
    assert set(cap.loc[cap["provider"] == "lambda", "capacity"]) <= {"yes", "no"}
    assert not math.isnan(cap["cheapest_per_hour"].min())
    every = inv.capacity(session=session)
    assert {"a100:8", "h100:8", "h200:8"} <= set(every["gpu"])


def test_no_state_file_means_no_fleets_and_none_is_created(sims, session):
    assert not session.config.state_path.exists()
    assert inv.fleets(session).empty
    assert inv.members(session=session).empty
    assert not session.config.state_path.exists()
    from vmops.errors import NotFound

    with pytest.raises(NotFound):
        inv.members("nope", session=session)
