"""Fleet commands (`vm fleet create|list|status|destroy|reconcile`, `inv fleet.*`): parse, call
vmops.fleet.manager, render. Each command body is a thin call into the manager; options are added with
the decorators of vmops.cli.base, so a new flag is one decorator and one argument.

Heavy imports (adapters, the fleet manager) happen inside the command bodies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from vmops.cli.base import FLEET, GPU, WholeNumber, command, group, make_output, output_options, quiet_option
from vmops.cli.output import Column, note, print_json, print_table, render_table, set_quiet, usage, warn
from vmops.cli.progress import MODES
from vmops.errors import InsufficientCapacity

if TYPE_CHECKING:
    from vmops.fleet.manager import FleetManager
    from vmops.fleet.planner import Plan
    from vmops.fleet.progress import Listener
    from vmops.fleet.report import FleetView

MEMBER_COLUMNS = (
    Column("name", "NAME", keep=True),
    Column("provider", "PROVIDER", keep=True),
    Column("region", "REGION"),
    Column("id", "ID"),
    Column("status", "STATUS", keep=True),
    Column("state", "STATE", keep=True),
    Column("reserved", "RESERVED"),
    Column("public_ip", "PUBLIC IP"),
    Column("price_per_hour", "$/HR", ">"),
    Column("last_error", "NOTE"),
)
FLEET_COLUMNS = (
    Column("name", "NAME", keep=True),
    Column("state", "STATE", keep=True),
    Column("gpu", "GPU", keep=True),
    Column("running", "RUNNING", ">", keep=True),
    Column("count", "COUNT", ">", keep=True),
    Column("min", "MIN", ">"),
    Column("policy", "POLICY"),
    Column("price_per_hour", "$/HR", ">"),
    Column("created_at", "CREATED"),
)
PLAN_COLUMNS = (
    Column("provider", "PROVIDER", keep=True),
    Column("region", "REGION", keep=True),
    Column("native_type", "TYPE"),
    Column("capacity", "CAPACITY"),
    Column("available", "AVAILABLE", ">"),
    Column("count", "VMS", ">", keep=True),
    Column("price_per_hour", "$/HR PER VM", ">"),
    Column("subtotal_per_hour", "$/HR", ">", keep=True),
)


def _manager(progress: "Listener | None" = None) -> "FleetManager":
    from vmops.fleet.manager import FleetManager

    from vmops.cli.vm_cmds import session

    return FleetManager(session(), progress=progress, note=note)


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


def _print_plan(plan: "Plan", wide: bool = False) -> None:
    print(f"Plan: {plan.count} x {plan.gpu} VM(s), policy {plan.policy}")
    print_table(plan.rows(), PLAN_COLUMNS, empty="(nothing can be placed)", wide=wide)
    extra = f" (plus {plan.unpriced_vms} VM(s) on capacity with no price: prepaid)" if plan.unpriced_vms else ""
    print(f"Total: ${plan.total_per_hour:,.2f}/hour for {plan.planned} VM(s){extra}")
    if plan.shortfall:
        print(f"Short: {plan.shortfall} VM(s) cannot be placed on current capacity")
    if plan.skipped:
        print()
        print("Not used:")
        print(render_table([s.to_dict() for s in plan.skipped],
                           [Column("provider", "PROVIDER"), Column("region", "REGION"), Column("reason", "WHY")]))


def _print_view(view: "FleetView", wide: bool = False) -> None:
    f = view.fleet
    print(f"Fleet {f.name}: {f.state.value}, {view.running} of {f.count} x {f.gpu} running "
          f"(min {f.min_count}, policy {f.policy}), ${view.price_per_hour:,.2f}/hour")
    if f.last_error:
        print(f"Last error: {f.last_error}")
    print_table([m.to_dict() for m in view.members], MEMBER_COLUMNS, empty="(no members)", wide=wide)
    for c in view.changes:
        note(f"reconciled: {c}")
    for w in view.warnings:
        warn(w)


POLICIES = ("spread", "cheapest", "pack")  # checked by vmops.fleet (FleetSpec.validated); here for completion


def _progress_option(fn: Any) -> Any:
    return click.option("--progress", type=click.Choice(MODES, case_sensitive=False), default="auto",
                        show_default=True, help="Progress on stderr: live table on a terminal, plain lines "
                        "otherwise; none = -q")(fn)


@group("fleet")
def fleet() -> None:
    """Fleets: COUNT VMs of one GPU shape spread over providers, recorded in the state file."""


@command("create", examples=[
    "vm fleet create -g h100:8 -c 6 -n train --dry-run  # the plan, with prices",
    "vm fleet create -g h100:8 -c 6 -n train --min 4     # 4 running will do",
    "vm fleet create -g gpu_8x_h100 -c 2 --policy cheapest -o json",
])
@click.option("-g", "--gpu", type=GPU, required=True,
              help="GPU shape TYPE[:GPUS_PER_VM] (h100, h100:8) or any provider's native type name")
@click.option("-c", "--count", type=WholeNumber(), required=True, help="Number of VMs in the fleet")
@click.option("-n", "--name", default="", help="Fleet name (default: a generated readable name, printed)")
@click.option("--min", "min_", type=WholeNumber(), default=0,
              help="Fewest running VMs that count as success (default: --count, all-or-nothing)")
@click.option("--policy", default="spread", show_default=True, help="Scheduling policy: spread, cheapest or pack",
              shell_complete=lambda ctx, param, incomplete: [p for p in POLICIES if p.startswith(incomplete)])
@click.option("--allow-unterminable-reserved", is_flag=True,
              help="Allow reserved capacity the provider cannot terminate through its API")
@click.option("--dry-run", is_flag=True, help="Print the plan (providers, regions, prices) and change nothing")
@_progress_option
@quiet_option
@output_options(csv=False)
def create(gpu: str, count: int, name: str, min_: int, policy: str, allow_unterminable_reserved: bool,
           dry_run: bool, progress: str, quiet: bool, output: str, as_json: bool, wide: bool) -> None:
    """Create a fleet across providers (--dry-run: only show the plan); COUNT VMs of one GPU shape."""
    from vmops.cli.progress import make_progress
    from vmops.fleet.manager import FleetSpec
    from vmops.shapes import canonical_shape

    set_quiet(quiet)
    out = make_output(output, as_json, wide)
    if count < 1:
        raise usage(f"--count must be at least 1 (got {count})")
    shape = canonical_shape(gpu)
    spec = FleetSpec(shape, count, name or None, min_ or None, policy,
                     allow_unterminable_reserved).validated()
    listener = None if dry_run else make_progress(progress.lower(), quiet, title=f"fleet {name + ': ' if name else ''}{count} x {shape}")
    mgr = _manager(listener)
    with mgr:
        if dry_run:
            plan = mgr.plan(spec)
            if out.json:
                print_json(plan.to_dict())
            else:
                _print_plan(plan, out.wide)
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
        if out.json:
            print_json(result.to_dict())
            return
        from vmops.fleet.report import FleetView

        _print_view(FleetView(result.fleet, result.members), out.wide)
        if result.shortfall:
            warn(f"fleet {result.fleet.name} is partial: {result.shortfall} of {result.fleet.count} VM(s) "
                 f"could not be made")


@command("list", examples=["vm fleet list", "vm fleet list -o json"])
@output_options(csv=False)
def list_(output: str, as_json: bool, wide: bool) -> None:
    """List the fleets vmops has on record (from the state file; no provider calls)."""
    out = make_output(output, as_json, wide)
    mgr = _manager()
    with mgr:
        views = mgr.list()
        rows = [{**v.fleet.to_dict(), "running": v.running, "price_per_hour": v.price_per_hour} for v in views]
        if out.json:
            print_json(rows)
        else:
            print_table(rows, FLEET_COLUMNS, empty="(no fleets)", wide=out.wide)


FLEET_ARG = click.argument("fleet", metavar="FLEET", type=FLEET)


@command("status", examples=["vm fleet status train", "vm fleet status train --no-refresh -o json"])
@FLEET_ARG
@click.option("--no-refresh", is_flag=True, help="Show the record without asking the providers")
@output_options(csv=False)
@quiet_option
def status(fleet: str, no_refresh: bool, output: str, as_json: bool, wide: bool, quiet: bool) -> None:
    """Show a fleet and its members, refreshed from the providers (members deleted elsewhere are marked gone)."""
    set_quiet(quiet)
    out = make_output(output, as_json, wide)
    name = _fleet_name(fleet)
    mgr = _manager()
    with mgr:
        view = mgr.status(name, refresh=not no_refresh)
        if out.json:
            print_json(view.to_dict())
        else:
            _print_view(view, out.wide)


@command("destroy", examples=["vm fleet destroy train", "vm fleet destroy train -o json"])
@FLEET_ARG
@output_options(csv=False)
@quiet_option
def destroy(fleet: str, output: str, as_json: bool, wide: bool, quiet: bool) -> None:
    """Destroy every member of a fleet; run it again to finish what could not be destroyed."""
    set_quiet(quiet)
    out = make_output(output, as_json, wide)
    name = _fleet_name(fleet)
    mgr = _manager()
    with mgr:
        view = mgr.destroy(name)
        if out.json:
            print_json(view.to_dict())
        else:
            _print_view(view, out.wide)


@command("reconcile", examples=["vm fleet reconcile train", "vm fleet reconcile --all"])
@click.argument("fleet", metavar="[FLEET]", type=FLEET, required=False, default=None)
@click.option("--all", "all_", is_flag=True, help="Reconcile every fleet on record")
@output_options(csv=False)
@quiet_option
def reconcile(fleet: str | None, all_: bool, output: str, as_json: bool, wide: bool, quiet: bool) -> None:
    """Compare a fleet with the providers: adopt orphans, mark gone members, finish interrupted creates/destroys."""
    set_quiet(quiet)
    out = make_output(output, as_json, wide)
    name = fleet
    if not name and not all_:
        raise usage("give a fleet NAME or --all")
    if name and all_:
        raise usage("give either a fleet NAME or --all, not both")
    if name:
        name = _fleet_name(name)
    mgr = _manager()
    with mgr:
        views = mgr.reconcile_all() if all_ else [mgr.reconcile(name)]  # type: ignore[arg-type]
        if out.json:
            print_json([v.to_dict() for v in views] if all_ else views[0].to_dict())
        else:
            for i, v in enumerate(views):
                if i:
                    print()
                _print_view(v, out.wide)
            if all_ and not views:
                print("(no fleets to reconcile)")


for _c in (create, list_, status, destroy, reconcile):
    fleet.add_command(_c)
