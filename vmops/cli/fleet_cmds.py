"""Fleet commands (`vm fleet create|list|status|destroy|reconcile`, `inv fleet.*`).

Heavy imports (adapters, the fleet manager) happen inside the task bodies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from invoke import Collection, task

from vmops.cli.output import Column, command, note, print_json, print_table, render_table, usage, warn
from vmops.errors import InsufficientCapacity, UsageError

if TYPE_CHECKING:
    from vmops.fleet.manager import FleetManager
    from vmops.fleet.planner import Plan
    from vmops.fleet.progress import StderrProgress
    from vmops.fleet.report import FleetView

JSON_HELP = "Print machine-readable JSON instead of a table"

MEMBER_COLUMNS = (
    Column("name", "NAME"),
    Column("provider", "PROVIDER"),
    Column("region", "REGION"),
    Column("id", "ID"),
    Column("status", "STATUS"),
    Column("state", "STATE"),
    Column("reserved", "RESERVED"),
    Column("public_ip", "PUBLIC IP"),
    Column("price_per_hour", "$/HR", ">"),
    Column("last_error", "NOTE"),
)
FLEET_COLUMNS = (
    Column("name", "NAME"),
    Column("state", "STATE"),
    Column("gpu", "GPU"),
    Column("running", "RUNNING", ">"),
    Column("count", "COUNT", ">"),
    Column("min", "MIN", ">"),
    Column("policy", "POLICY"),
    Column("price_per_hour", "$/HR", ">"),
    Column("created_at", "CREATED"),
)
PLAN_COLUMNS = (
    Column("provider", "PROVIDER"),
    Column("region", "REGION"),
    Column("native_type", "TYPE"),
    Column("capacity", "CAPACITY"),
    Column("available", "AVAILABLE", ">"),
    Column("count", "VMS", ">"),
    Column("price_per_hour", "$/HR PER VM", ">"),
    Column("subtotal_per_hour", "$/HR", ">"),
)


def _manager(progress: "StderrProgress | None" = None) -> "FleetManager":
    from vmops.fleet.manager import FleetManager
    from vmops.session import Session

    try:
        session = Session()
    except ValueError as e:
        raise UsageError(str(e), hint="Fix the configuration (`vm config show`)") from None
    return FleetManager(session, progress=progress, note=note)


def _fleet_name(name: str | None) -> str:
    """A fleet NAME argument, checked before the state file or a lock file is touched (the lock file is
    named after the fleet, so ``../x`` must never reach it; no fleet can exist under an invalid name)."""
    from vmops.fleet.naming import validate_fleet_name

    if not name:
        raise usage("a fleet NAME is required")
    try:
        return validate_fleet_name(name)
    except ValueError as e:
        raise usage(str(e), hint="`vm fleet list` shows the fleets on record") from None


def _print_plan(plan: "Plan") -> None:
    print(f"Plan: {plan.count} x {plan.gpu} VM(s), policy {plan.policy}")
    print_table(plan.rows(), PLAN_COLUMNS, empty="(nothing can be placed)")
    extra = f" (plus {plan.unpriced_vms} VM(s) on capacity with no price: prepaid)" if plan.unpriced_vms else ""
    print(f"Total: ${plan.total_per_hour:,.2f}/hour for {plan.planned} VM(s){extra}")
    if plan.shortfall:
        print(f"Short: {plan.shortfall} VM(s) cannot be placed on current capacity")
    if plan.skipped:
        print()
        print("Not used:")
        print(render_table([s.to_dict() for s in plan.skipped],
                           [Column("provider", "PROVIDER"), Column("region", "REGION"), Column("reason", "WHY")]))


def _print_view(view: "FleetView") -> None:
    f = view.fleet
    print(f"Fleet {f.name}: {f.state.value}, {view.running} of {f.count} x {f.gpu} running "
          f"(min {f.min_count}, policy {f.policy}), ${view.price_per_hour:,.2f}/hour")
    if f.last_error:
        print(f"Last error: {f.last_error}")
    print_table([m.to_dict() for m in view.members], MEMBER_COLUMNS, empty="(no members)")
    for c in view.changes:
        note(f"reconciled: {c}")
    for w in view.warnings:
        warn(w)


@task(
    help={
        "gpu": "GPU shape TYPE[:GPUS_PER_VM], e.g. h100, h100:8, a100:8",
        "count": "Number of VMs in the fleet",
        "name": "Fleet name (default: a generated readable name, printed)",
        "min": "Fewest running VMs that count as success (default: --count, all-or-nothing); "
               "between --min and --count the fleet is partial",
        "policy": "Scheduling policy: spread (default), cheapest or pack",
        "allow_unterminable_reserved": "Allow placing VMs on reserved capacity the provider cannot terminate "
                                       "through its API",
        "dry_run": "Print the plan (providers, regions, prices) and change nothing",
        "json": JSON_HELP,
    },
)
@command
def create(
    c: Any,
    gpu: str = "",
    count: int = 0,
    name: str = "",
    min: int = -1,  # noqa: A002 - the flag is --min; -1: not given
    policy: str = "",
    allow_unterminable_reserved: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """Create a fleet of COUNT VMs of one GPU shape across providers (or --dry-run to see the plan)."""
    from vmops.fleet.manager import FleetSpec
    from vmops.session import parse_shape_for

    if not gpu:
        raise usage("--gpu is required")
    if count < 1:
        raise usage(f"--count must be at least 1 (got {count})")
    shape = parse_shape_for(None, gpu)
    spec = FleetSpec(shape, count, name or None, None if min == -1 else min, policy or None,
                     allow_unterminable_reserved).validated()
    from vmops.fleet.progress import StderrProgress

    listener = None if dry_run else StderrProgress()
    mgr = _manager(listener)
    with mgr:
        if dry_run:
            plan = mgr.plan(spec)
            if json:
                print_json(plan.to_dict())
            else:
                _print_plan(plan)
            if plan.planned < spec.min:
                raise InsufficientCapacity(
                    f"only {plan.planned} of the {spec.min} VM(s) needed can be placed on current capacity",
                    hint="See the plan above for what each provider can supply; lower --count/--min or try "
                         "another shape",
                )
            return
        try:
            result = mgr.create(spec)
        finally:
            if listener is not None:
                listener.finish()
        if json:
            print_json(result.to_dict())
        else:
            from vmops.fleet.report import FleetView

            _print_view(FleetView(result.fleet, result.members))
            if result.shortfall:
                warn(f"fleet {result.fleet.name} is partial: {result.shortfall} of {result.fleet.count} VM(s) "
                     f"could not be made")
        problem = result.error()
        if problem is not None:
            raise problem


@task(name="list", help={"json": JSON_HELP})
@command
def list_(c: Any, json: bool = False) -> None:
    """List the fleets vmops has on record (from the state file; no provider calls)."""
    mgr = _manager()
    with mgr:
        views = mgr.list()
        rows = [{**v.fleet.to_dict(), "running": v.running, "price_per_hour": v.price_per_hour} for v in views]
        if json:
            print_json(rows)
        else:
            print_table(rows, FLEET_COLUMNS, empty="(no fleets)")


@task(positional=["fleet"], help={"fleet": "Fleet name", "no_refresh": "Show the record without asking the providers",
                                 "json": JSON_HELP})
@command
def status(c: Any, fleet: str | None = None, no_refresh: bool = False, json: bool = False) -> None:
    """Show a fleet and its members, refreshed from the providers (members deleted elsewhere are marked gone)."""
    name = _fleet_name(fleet)
    mgr = _manager()
    with mgr:
        view = mgr.status(name, refresh=not no_refresh)
        if json:
            print_json(view.to_dict())
        else:
            _print_view(view)


@task(positional=["fleet"], help={"fleet": "Fleet name", "json": JSON_HELP})
@command
def destroy(c: Any, fleet: str | None = None, json: bool = False) -> None:
    """Destroy every member of a fleet; run it again to finish what could not be destroyed."""
    name = _fleet_name(fleet)
    mgr = _manager()
    with mgr:
        view = mgr.destroy(name)
        if json:
            print_json(view.to_dict())
        else:
            _print_view(view)


@task(positional=["fleet"], help={"fleet": "Fleet name", "all": "Reconcile every fleet on record", "json": JSON_HELP})
@command
def reconcile(c: Any, fleet: str | None = None, all: bool = False, json: bool = False) -> None:  # noqa: A002
    """Compare a fleet with the providers: adopt orphans, mark gone members, finish interrupted creates/destroys."""
    name = fleet
    if not name and not all:
        raise usage("give a fleet NAME or --all")
    if name and all:
        raise usage("give either a fleet NAME or --all, not both")
    if name:
        name = _fleet_name(name)
    mgr = _manager()
    with mgr:
        views = mgr.reconcile_all() if all else [mgr.reconcile(name)]
        if json:
            print_json([v.to_dict() for v in views] if all else views[0].to_dict())
        else:
            for i, v in enumerate(views):
                if i:
                    print()
                _print_view(v)
            if all and not views:
                print("(no fleets to reconcile)")


#: `vm fleet reconcile --all` needs no NAME (see vmops.cli.main.fill_optional_positionals).
reconcile.optional_positionals = ("fleet",)  # type: ignore[attr-defined]

ns = Collection("fleet", create, list_, status, destroy, reconcile)
