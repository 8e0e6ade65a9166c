"""Fleet commands (`vm fleet create|list|status|destroy|reconcile`, `inv fleet.*`): parse, call
vmops.fleet.manager, render. Each command body is a thin call into the manager; options are added with
the decorators of vmops.cli.base, so a new flag is one decorator and one argument.

Heavy imports (adapters, the fleet manager) happen inside the command bodies.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click

from vmops.cli.base import (
    FLEET,
    GPU,
    WholeNumber,
    command,
    dry_run_option,
    group,
    make_output,
    output_options,
    load_cli_config,
    quiet_option,
    yes_option,
)
from vmops.cli.output import Column, note, print_json, print_table, render_table, set_quiet, usage, warn
from vmops.cli.progress import MODES
from vmops.errors import PartialFailure
from vmops.model import BILLED_STATES

if TYPE_CHECKING:
    from vmops.state import Store
    from vmops.fleet.decision import Decision
    from vmops.fleet.manager import FleetManager
    from vmops.fleet.planner import Plan
    from vmops.fleet.progress import Listener
    from vmops.fleet.report import CreatePreview, FleetView

MEMBER_COLUMNS = (
    Column("name", "NAME", keep=True),
    Column("provider", "PROVIDER", keep=True),
    Column("region", "REGION"),
    Column("id", "ID"),
    Column("status", "STATUS", keep=True),  # FleetView.shown: what the member is now
    Column("state", "STATE"),  # the provider's (the same as STATUS once a member is made)
    Column("reserved", "RESERVED"),
    Column("public_ip", "PUBLIC IP"),
    Column("price_per_hour", "$/HR", ">", keep=True),
    Column("last_error", "NOTE", prose=True),
)
#: The NOTE of a member whose provider could not be observed (``FleetView.seen``): its state is the record's.
UNSEEN_NOTE = "not observed: as last recorded"
FLEET_COLUMNS = (
    Column("name", "NAME", keep=True),
    Column("state", "STATE", keep=True),
    Column("gpu", "GPU", keep=True),
    Column("running", "RUNNING", ">", keep=True),
    Column("stopped", "STOPPED", ">"),
    Column("count", "COUNT", ">", keep=True),
    Column("min", "MIN", ">"),
    Column("policy", "POLICY"),
    Column("price_per_hour", "$/HR", ">"),
    Column("owner", "OWNER"),
    Column("created_at", "CREATED"),
)
DECISION_COLUMNS = (
    Column("action", "ACTION", keep=True),
    Column("name", "NAME", keep=True),
    Column("provider", "PROVIDER", keep=True),
    Column("id", "ID"),
    Column("price_per_hour", "$/HR", ">", keep=True),
    Column("reason", "WHY", keep=True, prose=True),
)
EVENT_COLUMNS = (
    Column("at", "AT", keep=True),
    Column("kind", "KIND", keep=True),
    Column("from", "FROM"),
    Column("to", "TO", keep=True),
    Column("operator", "OPERATOR"),
    Column("message", "MESSAGE", keep=True, prose=True),
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


@contextmanager
def _record() -> "Iterator[Store | None]":
    """The state store for a command that shows the record without asking a provider (`fleet list`, `fleet
    status --no-refresh`: vmops.fleet.report's ``views_on_record``/``view_on_record``, as the manager reads
    them), or None when there is no state file yet; closed afterwards. No manager, session or adapter is
    imported (their imports are most of a `vm` start-up: docs/design.md section 13; tests/cli/test_startup.py)."""
    from vmops.state import store_exists, store_for

    config = load_cli_config()
    store = store_for(config) if store_exists(config) else None
    try:
        yield store
    finally:
        if store is not None:
            store.close()


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


def _span(seconds: float) -> str:
    """A duration for people: 45s, 4m 12s, 1h 5m."""
    s = math.ceil(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    return f"{s // 3600}h {s % 3600 // 60}m"


def _print_plan(plan: "Plan", wide: bool = False) -> None:
    print(f"Plan: {plan.count} x {plan.gpu} VM(s), policy {plan.policy}")
    print_table(plan.rows(), PLAN_COLUMNS, empty="(nothing can be placed)", wide=wide)
    extra = []
    if plan.prepaid_vms:
        c = plan.commitment_per_hour
        extra.append(f"{plan.prepaid_vms} on prepaid reservations ($0/hour here"
                     + (f"; their commitment ${c:,.2f}/hour" if c else "") + ")")
    if plan.unpriced_vms:
        extra.append(f"{plan.unpriced_vms} with no known price")
    print(f"Total: ${plan.total_per_hour:,.2f}/hour for {plan.planned} VM(s)"
          + (" (" + "; ".join(extra) + ")" if extra else ""))
    if plan.planned:
        shares = plan.provider_seconds()
        each = ", ".join(f"{p} {_span(t)}" for p, t in shares.items())
        print(f"Expected to run in: {_span(plan.expected_seconds)}" + (f" ({each})" if len(shares) > 1 else ""))
    if plan.shortfall:
        print(f"Short: {plan.shortfall} VM(s) cannot be placed on current capacity")
    fallbacks = plan.fallbacks()
    if fallbacks:  # a refused create moves on: first to the other chosen options, then to these
        print()
        print("If a chosen option refuses, its VMs go to the others above, then to these:")
        print_table(fallbacks, [c for c in PLAN_COLUMNS if c.key not in ("count", "subtotal_per_hour")], wide=wide)
    if plan.skipped:
        print()
        print("Not used:")
        print(render_table([s.to_dict() for s in plan.skipped],
                           [Column("provider", "PROVIDER"), Column("region", "REGION"), Column("reason", "WHY")]))


def _print_preview(preview: "CreatePreview", wide: bool = False) -> None:
    summary = preview.summary()
    if summary is not None:
        print(summary)
        print(f"Terms: {'; '.join(preview.terms)}")
        if not preview.plan.count:
            return
    _print_plan(preview.plan, wide)


def _counts(view: "FleetView") -> str:
    c = view.counts
    parts = [f"{c.running} of {view.fleet.count} x {view.fleet.gpu} running"]
    for n, what in ((c.stopped, "stopped"), (c.starting, "starting"), (c.destroying, "being destroyed"),
                    (c.other, "in error or unknown"), (c.unknown_outcome, "with an unknown create outcome")):
        if n:
            parts.append(f"{n} {what}")
    return ", ".join(parts)


def _print_view(view: "FleetView", wide: bool = False, all_members: bool = False) -> None:
    f = view.fleet
    unpriced = view.counts.unpriced
    live = [m for m in view.members if m.status.may_exist]
    unseen = {m.id for m in live if not view.seen(m)}
    print(f"Fleet {f.name}: {view.state}, {_counts(view)}" + (f", {len(unseen)} as last recorded" if unseen else "")
          + f" (min {f.min_count}, policy {f.policy}), ${view.price_per_hour:,.2f}/hour"
          + (f" ({unpriced} with no known price)" if unpriced else ""))
    if f.last_error:
        print(f"Last error: {f.last_error}")
    rows = [{**view.shown(m), "price_per_hour": m.price_per_hour if m.state in BILLED_STATES else None,
             **({"last_error": UNSEEN_NOTE} if m.id in unseen else {})}
            for m in (view.members if all_members else live)]
    print_table(rows, MEMBER_COLUMNS, empty="(no members that may exist)", wide=wide)
    if unseen:
        note(f"?: state as last recorded ({' and '.join(sorted(view.unobserved))} could not be observed)")
    hidden = len(view.members) - len(rows)
    if hidden:
        note(f"{hidden} member(s) with no VM (failed, destroyed or gone) not shown (--all-members)")
    for c in view.changes:
        note(f"reconciled: {c}")
    for w in view.warnings:
        warn(w)


def _print_decision(d: "Decision", wide: bool = False) -> None:
    """The Decision a command is about to carry out (or would, with --dry-run): each VM and why, and what
    is held back; the hourly cost before and after."""
    print(f"Decision: {d.summary()}")
    rows = d.to_dict()["actions"]
    if rows:
        print_table(rows, DECISION_COLUMNS, wide=wide)
    if d.held:
        print("Held back (not done):")
        print_table([a.to_dict() for a in d.held], DECISION_COLUMNS, wide=wide)
    for n in d.notes:
        print(f"note: {n}")
    for p, why in d.unreachable.items():
        print(f"note: {p} could not be observed: {why}")


def _asks(yes: bool) -> bool:
    """Whether a command that changes VMs asks before it acts: on a terminal, without ``-y``."""
    from vmops.cli.vm_cmds import stdin_is_terminal

    return not yes and stdin_is_terminal()


def _confirmer(yes: bool, what: str, wide: bool) -> "Any":
    """The manager's ``confirm``: show the Decision and ask on a terminal (``-y`` and scripts: no question;
    scripts get its one-line summary on stderr)."""
    from vmops.cli.vm_cmds import confirm

    def ask(d: "Decision") -> bool:
        if not _asks(yes):
            note(d.summary())
            return True
        _print_decision(d, wide)
        confirm(f"{what} as shown above?", yes)
        return True

    return ask


def _show_or_apply(out: Any, dry_run: bool, yes: bool, what: str, preview: Callable[[Any], "Decision"],
                   apply: Callable[[Any, Any], Any]) -> None:
    """A fleet command that changes VMs: with --dry-run show its Decision and stop; else apply it through the
    manager, which shows the same Decision and asks (``_confirmer``) before acting."""
    mgr = _manager()
    with mgr:
        if dry_run:
            d = preview(mgr)
            print_json(d.to_dict()) if out.json else _print_decision(d, out.wide)
            return
        _decided(apply(mgr, _confirmer(yes, what, out.wide)), out)


POLICIES = ("spread", "cheapest", "pack", "fastest")  # checked by vmops.fleet (FleetSpec.validated); here for completion
RESERVED = ("never", "prefer", "only")


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
@click.option("--min", "min_", type=WholeNumber(), default=None,
              help="Fewest running VMs that count as success (default: --count, all-or-nothing; a resume keeps "
                   "the recorded one)")
@click.option("--policy", default=None, help="Scheduling policy: spread (default), cheapest, pack or fastest; a resume "
              "keeps the recorded one",
              shell_complete=lambda ctx, param, incomplete: [p for p in POLICIES if p.startswith(incomplete)])
@click.option("--reserved", type=click.Choice(RESERVED, case_sensitive=False), default=None,
              help="Reserved capacity: never (default: on-demand only), prefer, or only; a resume keeps the "
                   "recorded one")
@click.option("--allow-unterminable-reserved", is_flag=True,
              help="Allow reserved capacity the provider cannot terminate through its API")
@click.option("--dry-run", is_flag=True, help="Print the plan (providers, regions, prices) and change nothing; for an "
              "unfinished fleet's name, what the resume keeps and the plan for the rest")
@_progress_option
@quiet_option
@output_options(csv=False)
def create(gpu: str, count: int, name: str, min_: int | None, policy: str | None, reserved: str | None,
           allow_unterminable_reserved: bool, dry_run: bool, progress: str, quiet: bool, output: str,
           as_json: bool, wide: bool) -> None:
    """Create a fleet across providers (--dry-run: only show the plan); COUNT VMs of one GPU shape."""
    from vmops.cli.progress import make_progress
    from vmops.fleet.manager import FleetSpec
    from vmops.shapes import canonical_shape

    set_quiet(quiet)
    out = make_output(output, as_json, wide)
    if count < 1:
        raise usage(f"--count must be at least 1 (got {count})")
    shape = canonical_shape(gpu)
    spec = FleetSpec(shape, count, name or None, min_, policy, allow_unterminable_reserved,
                     reserved.lower() if reserved else None).validated()
    listener = None if dry_run else make_progress(progress.lower(), quiet, title=f"fleet {name + ': ' if name else ''}{count} x {shape}")
    mgr = _manager(listener)
    with mgr:
        if dry_run:
            preview = mgr.preview_create(spec)
            if out.json:
                print_json(preview.to_dict())
            else:
                _print_preview(preview, out.wide)
            for provider, why in preview.unobserved.items():
                warn(f"{provider}: could not be observed; its members are counted as last recorded ({why})")
            problem = preview.error()
            if problem is not None:
                raise problem
            return
        try:
            result = mgr.create(spec)
        finally:
            if listener is not None:
                listener.finish()
        for line in result.left_out():
            warn(line)
        if out.json:
            print_json(result.to_dict())
        else:
            from vmops.fleet.report import FleetView

            _print_view(FleetView(result.fleet, result.members), out.wide)
            if result.shortfall:
                warn(f"fleet {result.fleet.name} is {result.fleet.state.value}: {result.shortfall} of "
                     f"{result.fleet.count} VM(s) could not be made")
        problem = result.error()  # creates whose outcome is unknown are not success (exit 14)
        if problem is not None:
            raise problem


@command("list", examples=["vm fleet list", "vm fleet list --refresh", "vm fleet list -o json"])
@click.option("--refresh", is_flag=True, help="Observe every live fleet at its providers first (as status does)")
@output_options(csv=False)
def list_(refresh: bool, output: str, as_json: bool, wide: bool) -> None:
    """List the fleets on record (from the state store; --refresh asks the providers too)."""
    out = make_output(output, as_json, wide)
    if refresh:
        with _manager() as mgr:
            views = mgr.list(refresh=True)
    else:
        from vmops.fleet.report import views_on_record

        with _record() as store:
            views = views_on_record(store)
    rows = []
    for v in views:
        c = v.counts
        rows.append({**v.fleet.to_dict(), "state": v.state, "running": c.running, "stopped": c.stopped,
                     "unknown_outcome": c.unknown_outcome, "price_per_hour": c.price_per_hour,
                     "unpriced": c.unpriced, **({"unobserved": dict(v.unobserved)} if refresh else {})})
    if out.json:
        print_json(rows)
    else:
        print_table(rows, FLEET_COLUMNS, empty="(no fleets)", wide=out.wide)
    for v in views:
        for w in v.warnings:
            warn(f"{v.fleet.name}: {w}")
    _raise_if_incomplete(views)


FLEET_ARG = click.argument("fleet", metavar="FLEET", type=FLEET)


@command("status", examples=["vm fleet status train", "vm fleet status train --events",
                              "vm fleet status train --no-refresh -o json"])
@FLEET_ARG
@click.option("--no-refresh", is_flag=True, help="Show the record without asking the providers")
@click.option("--events", is_flag=True, help="Show the fleet's history too: who did what, when")
@click.option("--all-members", is_flag=True, help="Also show members with no VM (failed, destroyed or gone)")
@output_options(csv=False)
@quiet_option
def status(fleet: str, no_refresh: bool, events: bool, all_members: bool, output: str, as_json: bool, wide: bool,
           quiet: bool) -> None:
    """Show a fleet and its members, refreshed from the providers (members deleted elsewhere are marked gone)."""
    set_quiet(quiet)
    out = make_output(output, as_json, wide)
    name = _fleet_name(fleet)
    if no_refresh:
        from vmops.fleet.report import view_on_record

        with _record() as store:
            view = view_on_record(store, name)  # NotFound when there is no state file (``store`` None)
            assert store is not None
            history = [e.to_dict() for e in store.events(view.fleet.id)] if events else []
    else:
        with _manager() as mgr:
            view = mgr.status(name)
            history = [e.to_dict() for e in mgr.store.events(view.fleet.id)] if events else []
    if out.json:
        print_json({**view.to_dict(), **({"events": history} if events else {})})
    else:
        _print_view(view, out.wide, all_members)
        if events:
            print()
            print_table(history, EVENT_COLUMNS, empty="(no events)", wide=out.wide)
    _raise_if_incomplete([view])


def _decided(view: "FleetView", out: Any) -> None:
    if out.json:
        print_json(view.to_dict())
    else:
        _print_view(view, out.wide)
    _raise_if_incomplete([view])


def _raise_if_incomplete(views: list["FleetView"]) -> None:
    """After the views are shown: exit 14 when a provider could not be observed for any of them (the view
    says why; ``FleetView.incomplete`` is the rule)."""
    errors = [(v.fleet.name, e) for v in views if (e := v.incomplete()) is not None]
    if len(errors) == 1:
        raise errors[0][1]
    if errors:
        names = ", ".join(name for name, _ in errors)
        raise PartialFailure(f"{len(errors)} fleets could not be observed at every provider ({names}); their "
                             "members there are shown as last recorded",
                             hint="Run the command again once every provider answers")


@command("destroy", examples=["vm fleet destroy train --dry-run   # what it would destroy",
                               "vm fleet destroy train            # asks first on a terminal",
                               "vm fleet destroy train -y -o json"])
@FLEET_ARG
@click.option("--include-unrecorded", is_flag=True,
              help="Also destroy VMs named for the fleet that are not on record (shown first)")
@dry_run_option
@yes_option
@output_options(csv=False)
@quiet_option
def destroy(fleet: str, include_unrecorded: bool, dry_run: bool, yes: bool, output: str, as_json: bool, wide: bool,
            quiet: bool) -> None:
    """Destroy every VM of a fleet (shown first); run it again to finish what could not be destroyed."""
    set_quiet(quiet)
    out = make_output(output, as_json, wide)
    name = _fleet_name(fleet)
    _show_or_apply(out, dry_run, yes, f"Destroy fleet {name}",
                   lambda mgr: mgr.preview_destroy(name, include_unrecorded=include_unrecorded),
                   # unasked, each provider's part goes as soon as it is seen (its summary on stderr)
                   lambda mgr, ask: mgr.destroy(name, confirm=ask if _asks(yes) else None,
                                                include_unrecorded=include_unrecorded))


@command("reconcile", examples=["vm fleet reconcile train --dry-run", "vm fleet reconcile --all -y",
                                 "vm fleet reconcile train --destroy-surplus"])
@click.argument("fleet", metavar="[FLEET]", type=FLEET, required=False, default=None)
@click.option("--all", "all_", is_flag=True, help="Reconcile every fleet on record (one failing never stops the rest)")
@click.option("--destroy-surplus", is_flag=True, help="Also destroy members beyond the fleet's count (shown first)")
@dry_run_option
@yes_option
@output_options(csv=False)
@quiet_option
def reconcile(fleet: str | None, all_: bool, destroy_surplus: bool, dry_run: bool, yes: bool, output: str,
              as_json: bool, wide: bool, quiet: bool) -> None:
    """Bring a fleet's record in line with the providers: adopt its VMs, mark gone members, finish
    interrupted work. Never destroys a VM that exists unless a destroy was asked for (or --destroy-surplus)."""
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
        if dry_run:
            names = [name] if name else [f.name for f in mgr.list() if f.fleet.state.value != "destroyed"]
            ds = [mgr.preview_reconcile(n, destroy_surplus=destroy_surplus) for n in names]
            if out.json:
                print_json([d.to_dict() for d in ds] if all_ else ds[0].to_dict())
            else:
                for d in ds:
                    _print_decision(d, out.wide)
                if all_ and not ds:
                    print("(no fleets to reconcile)")
            return
        ask = _confirmer(yes, "Reconcile", out.wide)
        failure = None
        if all_:
            try:
                views = mgr.reconcile_all(destroy_surplus=destroy_surplus, confirm=ask)
            except PartialFailure as e:  # the others were reconciled: show them, then fail
                views, failure = list(getattr(e, "views", [])), e
        else:
            views = [mgr.reconcile(name, destroy_surplus=destroy_surplus, confirm=ask)]  # type: ignore[arg-type]
        if out.json:
            print_json([v.to_dict() for v in views] if all_ else views[0].to_dict())
        else:
            for i, v in enumerate(views):
                if i:
                    print()
                _print_view(v, out.wide)
            if all_ and not views and failure is None:
                print("(no fleets to reconcile)")
        if failure is not None:
            raise failure
        _raise_if_incomplete(views)


def _power(start: bool) -> Any:
    verb = "start" if start else "stop"
    doc = (f"{verb.capitalize()} every member of a fleet that can be (shown first; "
           + ("they bill again once running)." if start else "stopped VMs stop billing for their GPUs)."))

    @command(verb, examples=[f"vm fleet {verb} train --dry-run", f"vm fleet {verb} train -y"], help=doc)
    @FLEET_ARG
    @dry_run_option
    @yes_option
    @output_options(csv=False)
    @quiet_option
    def power(fleet: str, dry_run: bool, yes: bool, output: str, as_json: bool, wide: bool, quiet: bool) -> None:
        set_quiet(quiet)
        out = make_output(output, as_json, wide)
        name = _fleet_name(fleet)
        _show_or_apply(out, dry_run, yes, f"{verb.capitalize()} fleet {name}",
                       lambda mgr: mgr.preview_power(name, start=start),
                       lambda mgr, ask: mgr.power(name, start=start, confirm=ask))

    return power


stop = _power(False)
start = _power(True)


for _c in (create, list_, status, destroy, reconcile, stop, start):
    fleet.add_command(_c)
