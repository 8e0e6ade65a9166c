"""Single-VM commands (`vm list`, `vm create`, `vm get|stop|start|destroy|reboot|reset|restart`,
`vm capacity`, `vm reservations`, `vm types`): parse, call vmops, render.

A VM is addressed by ID or name: with ``-p`` the argument is that provider's instance id (one direct call);
without, every enabled provider is listed and the id or name must match exactly one VM (vmops.lookup).
Heavy libraries are imported inside the command bodies (via vmops.session), never at module import.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable

import click

from vmops.cli import cache
from vmops.cli.base import (
    GPU,
    REGION,
    VM_REF,
    Output,
    WholeNumber,
    command,
    dry_run_option,
    load_cli_config,
    make_output,
    output_options,
    provider_option,
    quiet_option,
    wait_option,
    yes_option,
)
from vmops.cli.output import (
    INSTANCE_COLUMNS,
    INSTANCE_JSON_FIELDS,
    Column,
    instance_json,
    note,
    print_json,
    print_rows,
    print_table,
    set_quiet,
    usage,
    warn,
)
from vmops.errors import Interrupted, NotFound, PartialFailure, ProviderUnavailable, VmopsError

if TYPE_CHECKING:
    from vmops.catalogue import NativeType
    from vmops.model import CreateRequest, Instance
    from vmops.providers.base import Provider
    from vmops.reserved import ReservedMode
    from vmops.session import Session

#: More VMs than this in one `vm create` is a fleet's job (and a typo'd --count must not loop for ever).
MAX_CREATE_COUNT = 100
#: Longest VM name `vm create` accepts (providers' own limits are lower or unstated).
MAX_NAME_LENGTH = 128


def session() -> "Session":
    """A Session for the CLI, on the configuration loaded once (vmops.cli.base.load_cli_config)."""
    from vmops.session import Session

    return Session(load_cli_config())


def check_vm_name(name: str) -> str:
    """A VM name a human can read back: no control/format characters (newlines, NUL, bidi overrides),
    not blank, at most MAX_NAME_LENGTH characters."""
    import unicodedata

    bad = next((c for c in name if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp")), None)
    if bad is not None:
        raise usage(f"--name must not contain control or format characters (found U+{ord(bad):04X})",
                    hint="Use letters, digits, '-', '_' and '.'")
    if not name.strip():
        raise usage("--name must not be blank", hint="Omit --name for a generated name")
    if len(name) > MAX_NAME_LENGTH:
        raise usage(f"--name is {len(name)} characters long; at most {MAX_NAME_LENGTH} are allowed")
    return name


def raise_failures(failures: dict[str, VmopsError], names: list[str], what: str) -> None:
    """After printing what the other providers answered: report the providers that failed, and exit with
    the failure's own code when every provider failed the same way, else as a partial failure (14)."""
    if not failures:
        return
    first = next(iter(failures.values()))
    if len(names) == 1:
        raise first
    for n, err in failures.items():
        warn(f"{n} could not be {what}: {err.render(named=False)}")
    kinds = {type(e) for e in failures.values()}
    if len(failures) == len(names) and len(kinds) == 1:
        raise type(first)(f"none of the {len(names)} providers could be {what}", hint=first.hint)
    raise PartialFailure(f"{len(failures)} of {len(names)} providers could not be {what} ({', '.join(failures)})",
                         hint="What the other providers answered is shown above")


def show_instances(instances: list["Instance"], fmt: str, wide: bool = False, single: bool = False) -> None:
    from vmops.pricing import priced_instance

    rows = [instance_json(priced_instance(i)) for i in instances]  # the one price rule: reserved = prepaid $0
    if fmt == "json":
        print_json(rows[0] if single and rows else rows)
    else:
        print_rows(rows, INSTANCE_COLUMNS, fmt, wide=wide, empty="(no instances)", fields=INSTANCE_JSON_FIELDS)


def _remember(instances: list["Instance"], full_listing: tuple[str, ...] | list[str] = ()) -> None:
    cache.remember([(i.provider, i.id, i.name) for i in instances], replace_provider=full_listing)


@command("list", examples=[
    "vm list                      # every VM at every enabled provider",
    "vm list -p lambda -o json    # one provider, machine-readable",
    "vm list -o csv > vms.csv     # as CSV (the notebooks' columns)",
])
@provider_option("Only this provider (default: every enabled provider)")
@output_options()
def list_(provider: str | None, output: str, as_json: bool, wide: bool) -> None:
    """List VMs at every provider (concurrently); a failing provider is reported, not hidden behind."""
    out = make_output(output, as_json, wide)
    with session() as s:
        names = s.provider_names(provider)
        result = s.instances(names)
        instances = [i for n in names for i in result.results.get(n, [])]
        _remember(instances, list(result.results))
        if out.fmt == "csv":
            from vmops.inventory import instances_frame

            instances_frame(instances=instances, session=s).to_csv(sys.stdout, index=False)
        else:
            show_instances(instances, out.fmt, out.wide)
        raise_failures(result.failures, names, "listed")


@command("create", examples=[
    "vm create -p crusoe -g h100:8             # one 8x H100 VM; waits till running",
    "vm create -p lambda -g gpu_1x_a100 -c 2 -n job   # native name; job-0, job-1",
    "vm create -p crusoe -g h100 -r us-east --dry-run # what would be made",
    "vm create -p crusoe -g h100:8 --reserved only  # into a free reservation",
])
@provider_option(required=True)
@click.option("-g", "--gpu", type=GPU, required=True,
              help="GPU shape TYPE[:GPUS_PER_VM] (h100, h100:8) or this provider's native type name")
@click.option("-c", "--count", type=WholeNumber(), default=1, show_default=True, help="Number of VMs")
@click.option("-n", "--name", default="", help="VM name (with --count > 1: -0, -1, ... suffixes); default vm-<random>")
@click.option("-r", "--region", type=REGION, default="", help="Native region or alias (us-west, us-east, eu-west); "
              "default: one with capacity")
@click.option("--reservation", default="", help="Create only into this reservation id (never on-demand)")
@click.option("--reserved", type=click.Choice(("never", "prefer", "only"), case_sensitive=False), default=None,
              help="Reserved capacity: never (default: on-demand only), prefer, or only (default with "
                   "--reservation: only)")
@click.option("--allow-unterminable-reserved", is_flag=True,
              help="Allow reserved capacity the provider cannot terminate through its API")
@wait_option
@dry_run_option
@output_options()
@quiet_option
def create(provider: str, gpu: str, count: int, name: str, region: str, reservation: str, reserved: str | None,
           allow_unterminable_reserved: bool, no_wait: bool, dry_run: bool, output: str, as_json: bool, wide: bool,
           quiet: bool) -> None:
    """Create VMs at one provider; waits until they run (--no-wait: no). Reserved capacity is used only
    when asked (--reserved prefer|only, or --reservation ID)."""
    from vmops.catalogue import provider_entry
    from vmops.providers.base import TARGETS
    from vmops.shapes import native_type_for
    from vmops.single import create_requests, refuse_taken_names, resolve_mode

    set_quiet(quiet)
    out = make_output(output, as_json, wide)
    native = native_type_for(provider, gpu)
    if count < 1:
        raise usage(f"--count must be at least 1 (got {count})")
    if count > MAX_CREATE_COUNT:
        raise usage(f"--count {count} is more than {MAX_CREATE_COUNT} VMs in one create",
                    hint="Use `vm fleet create` for more VMs")
    if name:
        check_vm_name(name)
    try:
        native_region = provider_entry(provider).resolve_region(region or None)
    except ValueError as e:
        raise usage(str(e)) from None
    mode = resolve_mode(reserved.lower() if reserved else None, (reservation,) if reservation else ())
    import secrets

    base = name or f"vm-{secrets.token_hex(3)}"
    names = [base] if count == 1 else [f"{base}-{i}" for i in range(count)]
    with session() as s:
        pname = provider
        adapter = s.provider(pname)
        refuse_taken_names(adapter, names)  # a dry run refuses them too
        requests = create_requests(adapter, native.name, names, region=native_region, reserved=mode,
                                   reservation_ids=(reservation,) if reservation else (),
                                   allow_unterminable_reserved=allow_unterminable_reserved, names_free=True)
        if dry_run:  # the same requests, placed by the adapter's own rule (reads only): what the create would do
            _show_dry_create(requests, [adapter.placement(r) for r in requests], provider, native, mode, out.fmt,
                             generated=not name)
            return
        made: list[Instance] = []
        errors: list[tuple[str, VmopsError]] = []
        try:
            for req in requests:
                vm_name = req.name
                try:
                    inst = adapter.create(req, wait=False)
                except VmopsError as e:
                    errors.append((vm_name, e))
                    break  # the next would very likely fail the same way; report what was made
                made.append(inst)
                _remember([inst])
                where = f" in {inst.region}" if inst.region and not native_region else ""
                note(f"{pname}: accepted {inst.name} ({inst.id}){where}")
            if made and not no_wait:
                note(f"{pname}: waiting for {len(made)} VM(s) to run ...")
                try:
                    settled = adapter.wait_for({i.id: TARGETS["create"] for i in made})
                except ProviderUnavailable as e:  # made, then unreadable: never reported as if nothing was made
                    show_instances(made, out.fmt, out.wide)  # as accepted: they exist and may bill
                    raise _unconfirmed(made, pname, e) from None
                made = [settled[i.id] for i in made]
        except KeyboardInterrupt:
            if not made:
                raise
            ids = ", ".join(f"{i.name} ({i.id})" for i in made)
            raise Interrupted(f"interrupted; these VMs were accepted and may be running (and billing): {ids}",
                              hint=f"Check with `vm list -p {pname}`; remove with "
                                   f"`vm destroy ID -p {pname}`") from None
        for i in made:  # waited for, but not running (e.g. the provider put it in error)
            if not no_wait and i.state.value != "running":
                errors.append((i.name, VmopsError(f"{i.name} ({i.id}) ended {i.state.value}")))
        if made or not errors:  # a create that made nothing is its error alone, not an empty table
            show_instances(made, out.fmt, out.wide)
        if errors:
            first_name, first = errors[0]
            if not made:
                raise first
            raise PartialFailure(
                f"made {len(made)} of {count} VM(s); {first_name} failed: {first.message}",
                hint="The VMs above exist and bill; destroy them or retry the rest",
            )


def _unconfirmed(made: list[Instance], provider: str, err: ProviderUnavailable) -> PartialFailure:
    """The error of a create whose VMs were accepted but not seen running: it names them, since they may bill."""
    ids = ", ".join(f"{i.name} ({i.id})" for i in made)
    one, it = (made[0].name, "it") if len(made) == 1 else ("NAME", "them")
    return PartialFailure(f"accepted {ids} at {provider}, but could not confirm {it} running: "
                          f"{err.message.rstrip('.')}",
                          hint=f"{it.capitalize()} may be running and billing: `vm get {one}` shows {it} once "
                               f"{provider} answers, `vm destroy {one}` removes {it}")


def _show_dry_create(requests: "list[CreateRequest]", placed: list[tuple[str | None, str | None]], provider: str,
                     native: "NativeType", mode: "ReservedMode", fmt: str, *, generated: bool) -> None:
    """What `vm create --dry-run` prints: each VM as the create would send it (region and reservation as the
    adapter places it now), on stderr; with --json, the same as an object on stdout."""
    price = native.list_price_per_hour
    if fmt == "json":
        print_json({"dry_run": True, "name_generated": generated, "vms": [
            {"name": r.name, "provider": provider, "gpu": str(native.shape), "native_type": native.name,
             "region": region, "reservation_id": rid, "reserved": mode.value, "list_price_per_hour": price}
            for r, (region, rid) in zip(requests, placed)]})
    regions = list(dict.fromkeys(region for region, _ in placed if region))
    rids = list(dict.fromkeys(rid for _, rid in placed if rid))
    where = f" in {', '.join(regions)}" if regions else ""
    into = (f" into reservation {', '.join(rids)}" if rids else
            f" (reserved capacity: {mode.value})" if mode.value != "never" else " on on-demand capacity")
    names = ", ".join(r.name for r in requests) + (" (a generated name: --name sets it)" if generated else "")
    cost = (f"prepaid by the reservation (list price ${price:,.2f}/hour)" if rids else
            f"list price ${price:,.2f}/hour each")
    note(f"dry run: would create {names} ({native.shape}, {provider} type {native.name}) at {provider}{where}{into}; "
         f"{cost}; nothing was sent")


# ---- one VM, by ID or name -----------------------------------------------------------------------------

def _need_ref(ref: str) -> str:
    if ref is None or str(ref).strip() == "":
        raise usage("the VM ID (or name) must not be empty", hint="`vm list` shows ids and names")
    return ref


def resolve(s: "Session", ref: str, provider: str | None) -> tuple[str, str, "Instance"]:
    """(provider, instance id, the instance). With a provider, ``ref`` is first that provider's instance id (one
    direct call), then an id or name in its list: `-p` narrows the search, it does not forbid names."""
    from vmops.lookup import find_instance

    _need_ref(ref)
    if provider:
        try:
            return provider, ref, s.provider(provider).get_instance(ref)
        except NotFound as by_id:
            try:
                inst = find_instance(s, ref, [provider])
            except NotFound:
                raise by_id from None
    else:
        inst = find_instance(s, ref)
    return inst.provider, inst.id, inst


def already_gone(provider: str | None, ref: str) -> "cache.Seen | None":
    """The cache entry of a VM vmops has seen and the provider no longer has (destroy is idempotent)."""
    if provider:
        return cache.known(provider, ref)
    return cache.gone_matching(ref)


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def confirm(question: str, yes: bool) -> None:
    """Ask on a terminal unless ``-y``; scripts (stdin not a terminal) are not asked."""
    if yes or not stdin_is_terminal():
        return
    click.confirm(question, default=False, abort=True, err=True)


VERB_DOCS = {
    "get": "Show one VM (by ID, or by name when unambiguous).",
    "stop": "Stop a VM and wait until it is stopped.",
    "start": "Start a stopped VM and wait until it runs.",
    "destroy": "Destroy a VM and wait until the provider no longer has it (already gone = success).",
    "reboot": "Reboot a running VM (soft).",
    "reset": "Reset a running VM (hard).",
    "restart": "Restart a running VM (stop + start; the public IP may change).",
}
_ALREADY_SAID = {"stop": "stopped", "start": "running", "destroy": "gone"}
DONE = {"stop": "stopped", "start": "started", "destroy": "destroyed", "reboot": "rebooted", "reset": "reset",
        "restart": "restarted"}


def _examples(verb: str) -> list[str]:
    if verb == "get":
        return ["vm get train-node-01            # by name, at whichever provider has it",
                "vm get 3f2a... -p crusoe -o json # by id at one provider (one direct call)"]
    return [f"vm {verb} train-node-01",
            f"vm {verb} ID -p crusoe -y --no-wait  # no prompt, no wait",
            f"vm {verb} train-node-01 --dry-run  # what it would do (or its error)"]


def _fleet_note(name: str, verb: str) -> str:
    """For a stop or destroy of a VM named as a fleet's member: which fleet its name gives (from the name alone:
    the record decides ownership, and sees the change at its next status or reconcile)."""
    if verb not in ("destroy", "stop"):
        return ""
    from vmops.fleet.naming import parse_member_name

    member = parse_member_name(name)
    return f", named as a member of fleet {member[0]!r}" if member else ""


def _without_sending(adapter: "Provider", verb: str, inst: "Instance", out: Output, *, already: bool,
                     dry_run: bool, wait: bool) -> None:
    """A verb with nothing to send (vmops.verbs.Verdict): the VM is already where it takes it, or on its way
    there (a verb sent earlier whose wait was cut short), which is waited for unless --no-wait or --dry-run."""
    from vmops.providers.base import TARGETS

    where = f"{inst.name} ({inst.id}) at {adapter.name}"
    if already:
        note(f"{where} is already {_ALREADY_SAID[verb]}; nothing to do")
    else:
        waits = wait and not dry_run
        note(f"{where} is already {inst.state.value}; "
             + (f"waiting until it is {_ALREADY_SAID[verb]}" if waits else "nothing to send"))
        if waits:
            inst = adapter.wait_for({inst.id: TARGETS[verb]})[inst.id]
            if verb == "destroy":
                cache.mark_gone(adapter.name, inst.id, inst.name)
                note(f"{adapter.name}: destroyed {inst.name} ({inst.id})")
    if not dry_run and verb != "destroy":
        show_instances([inst], out.fmt, out.wide, single=True)


def _verb_command(verb: str) -> click.Command:
    def run(ref: str, provider: str | None, output: str, as_json: bool, wide: bool, no_wait: bool = False,
            yes: bool = False, dry_run: bool = False, quiet: bool = False) -> None:
        set_quiet(quiet)
        out = make_output(output, as_json, wide)
        _need_ref(ref)
        with session() as s:
            try:
                pname, iid, inst = resolve(s, ref, provider)
            except NotFound:
                seen = already_gone(provider, ref) if verb == "destroy" else None
                if seen is None:
                    raise
                note(f"{seen.name or ref} ({seen.id}) at {seen.provider} is already gone; nothing to do")
                return
            adapter = s.provider(pname)
            if verb == "get":
                _remember([inst])
                show_instances([inst], out.fmt, out.wide, single=True)
                return
            from vmops.verbs import verdict

            judged = verdict(adapter, verb, inst)  # the same for --dry-run and the action
            if judged.refusal is not None:
                raise judged.refusal
            if judged.already or judged.underway:
                _without_sending(adapter, verb, inst, out, already=judged.already, dry_run=dry_run, wait=not no_wait)
                return
            label = f"{inst.name} ({inst.id}) at {pname}" + _fleet_note(inst.name, verb)
            if dry_run:
                note(f"dry run: would {verb} {label} (now {inst.state.value}); "
                     "nothing was changed")
                return
            confirm(f"{verb.capitalize()} {label}?", yes)
            try:
                done = getattr(adapter, verb)(iid, wait=not no_wait)
            except NotFound:
                seen = cache.known(pname, iid) if verb == "destroy" else None
                if seen is None:
                    raise
                cache.mark_gone(pname, iid)
                note(f"{seen.name or iid} ({iid}) at {pname} is already gone; nothing to do")
                return
            if verb == "destroy":
                cache.mark_gone(pname, iid, inst.name)
            note(f"{pname}: {DONE[verb] if not no_wait else verb + ' requested for'} {inst.name} ({iid})")
            show_instances([done], out.fmt, out.wide, single=True)

    params: list[Callable[[Any], Any]] = [
        click.argument("ref", metavar="ID", type=VM_REF),
        provider_option("Only this provider (an ID there is one direct call; default: find the ID or name at "
                        "every enabled provider)"),
        output_options(),
    ]
    if verb != "get":  # every verb that changes a VM asks on a terminal first, so each takes -y
        params += [wait_option, dry_run_option, quiet_option, yes_option]

    def body(**kwargs: Any) -> None:
        run(**kwargs)

    body.__doc__ = VERB_DOCS[verb]
    for p in reversed(params):
        body = p(body)
    return command(verb, examples=_examples(verb))(body)


get = _verb_command("get")
stop = _verb_command("stop")
start = _verb_command("start")
destroy = _verb_command("destroy")
reboot = _verb_command("reboot")
reset = _verb_command("reset")
restart = _verb_command("restart")


OFFER_COLUMNS = (
    Column("provider", "PROVIDER", keep=True),
    Column("gpu", "GPU", keep=True),
    Column("region", "REGION", keep=True),
    Column("available", "AVAILABLE", ">", keep=True),
    Column("price_per_hour", "$/HR", ">", keep=True),
    Column("billing", "BILLING"),
    Column("native_type", "TYPE"),
    Column("price_source", "PRICE FROM"),
)


@command("capacity", examples=[
    "vm capacity -g h100:8        # who can supply 8x H100 VMs now, at what price",
    "vm capacity -g gpu_8x_h100     # any provider's native name works (same shape)",
    "vm capacity -p nebius -o json",
])
@click.option("-g", "--gpu", type=GPU, default="", help="Only this GPU shape (canonical or any provider's native name)")
@provider_option("Only this provider (default: every enabled provider)")
@output_options()
def capacity(gpu: str, provider: str | None, output: str, as_json: bool, wide: bool) -> None:
    """What each provider can supply now, per region and price; reserved capacity included."""
    from vmops.shapes import canonical_shape

    out = make_output(output, as_json, wide)
    shape = canonical_shape(gpu) if gpu else None
    with session() as s:
        names = s.provider_names(provider)
        result = s.offers(shape, names)
        rows = []
        from vmops.pricing import priced_offer

        for o in result.flat():
            d = priced_offer(o)  # the one price rule: reserved capacity is prepaid ($0), its commitment apart
            d["billing"] = f"reserved {o.reservation_id} (prepaid)" if o.reserved else "on-demand"
            if o.available is None:
                d["available"] = {True: "yes", False: "none", None: "unknown"}[o.has_capacity]
            rows.append(d)
        print_rows(rows, OFFER_COLUMNS, out.fmt, wide=out.wide, empty="(no offers)")
        raise_failures(result.failures, names, "asked for capacity")


RESERVATION_COLUMNS = (
    Column("provider", "PROVIDER", keep=True),
    Column("id", "ID", keep=True),
    Column("gpu", "GPU", keep=True),
    Column("region", "REGION"),
    Column("available_vms", "FREE", ">", keep=True),
    Column("total_vms", "TOTAL", ">"),
    Column("used_vms", "USED", ">"),
    Column("active", "ACTIVE"),
    Column("native_type", "TYPE"),
    Column("price_per_hour", "$/VM-HR", ">"),
)


@command("reservations", examples=["vm reservations", "vm reservations -p crusoe -o json"])
@provider_option("Only this provider (default: every enabled provider)")
@output_options()
def reservations(provider: str | None, output: str, as_json: bool, wide: bool) -> None:
    """List reserved capacity at each provider (in VMs)."""
    out = make_output(output, as_json, wide)
    with session() as s:
        names = s.provider_names(provider)
        result = s.reservations(names)
        print_rows([r.to_dict() for r in result.flat()], RESERVATION_COLUMNS, out.fmt, wide=out.wide,
                   empty="(no reservations)")
        raise_failures(result.failures, names, "asked for reservations")


TYPE_COLUMNS = (
    Column("shape", "SHAPE", keep=True),
    Column("provider", "PROVIDER", keep=True),
    Column("native_type", "NATIVE TYPE", keep=True),
    Column("list_price_per_hour", "$/VM-HR", ">", keep=True),
    Column("price_per_gpu_hour", "$/GPU-HR", ">"),
    Column("gpus_per_vm", "GPUS", ">"),
    Column("vcpus", "VCPUS", ">"),
    Column("memory_gib", "MEM GiB", ">"),
    Column("price_source", "PRICE FROM"),
)


@command("types", examples=[
    "vm types                 # every shape, each provider's names, list prices",
    "vm types -g h100:8       # who offers 8x H100, cheapest first",
    "vm types -p nebius -o json",
])
@click.option("-g", "--gpu", type=GPU, default="", help="Only this shape (canonical or any native name)")
@provider_option("Only this provider")
@output_options()
def types(gpu: str, provider: str | None, output: str, as_json: bool, wide: bool) -> None:
    """GPU shapes with each provider's names and list prices (no provider call); GPUs per VM, vCPUs, memory."""
    from vmops.shapes import type_rows

    out = make_output(output, as_json, wide)
    print_rows([r.to_dict() for r in type_rows(provider, gpu or None)], TYPE_COLUMNS, out.fmt, wide=out.wide,
               empty="(no types)")


COMMANDS = (list_, create, get, stop, start, destroy, reboot, reset, restart, capacity, reservations, types)
__all__ = ["COMMANDS", "print_table", "raise_failures", "session", "show_instances"]
