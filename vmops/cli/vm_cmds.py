"""Single-VM commands (`vm list`, `vm create`, `vm get|stop|start|destroy|reboot|reset|restart`,
`vm capacity`, `vm reservations`). Each is an invoke task; the same functions back `inv vm.*`.

Heavy libraries are imported inside the task bodies (via vmops.session), never at module import.
"""

from __future__ import annotations

import secrets
import sys
from typing import TYPE_CHECKING, Any

from invoke import Collection, task

from vmops.cli.output import (
    INSTANCE_COLUMNS,
    Column,
    command,
    instance_json,
    note,
    print_json,
    print_table,
    usage,
    warn,
)
from vmops.errors import Interrupted, PartialFailure, UsageError, VmopsError

if TYPE_CHECKING:
    from vmops.model import Instance
    from vmops.session import Session

PROVIDER_HELP = "Provider name: crusoe, lambda or nebius"
#: More VMs than this in one `vm create` is a fleet's job (and a typo'd --count must not loop for ever).
MAX_CREATE_COUNT = 100
#: Longest VM name `vm create` accepts (providers' own limits are lower or unstated).
MAX_NAME_LENGTH = 128
JSON_HELP = "Print machine-readable JSON instead of a table"
WAIT_HELP = "Return at once instead of waiting for the VM to settle"


def _session() -> "Session":
    from vmops.session import Session

    try:
        return Session()
    except ValueError as e:  # bad config file / VMOPS_PROVIDERS
        raise UsageError(str(e), hint="Fix the configuration (`vm config show`)") from None


def _need(value: str | None, flag: str) -> str:
    if value is None or str(value).strip() == "":
        raise usage(f"{flag} is required")
    return str(value)


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
        warn(f"{n} could not be {what}: {err}")
    kinds = {type(e) for e in failures.values()}
    if len(failures) == len(names) and len(kinds) == 1:
        raise type(first)(f"none of the {len(names)} providers could be {what}", hint=first.hint)
    raise PartialFailure(f"{len(failures)} of {len(names)} providers could not be {what} ({', '.join(failures)})",
                         hint="What the other providers answered is shown above")


def _show_instances(instances: list["Instance"], as_json: bool, single: bool = False) -> None:
    rows = [instance_json(i.to_dict()) for i in instances]
    if as_json:
        print_json(rows[0] if single and rows else rows)
    else:
        print_table(rows, INSTANCE_COLUMNS, empty="(no instances)")


@task(
    name="list",
    help={"provider": PROVIDER_HELP + " (default: every enabled provider)", "json": JSON_HELP,
          "output": "table (default), json or csv"},
)
@command
def list_(c: Any, provider: str = "", json: bool = False, output: str = "table") -> None:
    """List instances at every provider (concurrently); a failing provider is reported, not hidden behind."""
    fmt = "json" if json else output.lower()
    if fmt not in ("table", "json", "csv"):
        raise usage(f"unknown --output {output!r}", hint="Use table, json or csv")
    with _session() as s:
        names = s.provider_names(provider or None)
        result = s.instances(names)
        instances = [i for n in names for i in result.results.get(n, [])]
        if fmt == "csv":
            from vmops.inventory import instances_frame

            instances_frame(instances=instances, session=s).to_csv(sys.stdout, index=False)
        else:
            _show_instances(instances, fmt == "json")
        raise_failures(result.failures, names, "listed")


@task(
    help={
        "provider": PROVIDER_HELP,
        "gpu": "GPU shape TYPE[:GPUS_PER_VM] (h100, h100:8, a100:8, h200) or the provider's native type name",
        "count": "Number of VMs (default 1)",
        "name": "VM name (with --count > 1, names get -0, -1, ... suffixes); default: vm-<random>",
        "region": "Native region or alias (us-west, us-east, eu-west); default: one with capacity",
        "reservation": "Create only into this reservation id (never on-demand)",
        "no_wait": WAIT_HELP,
        "json": JSON_HELP,
    },
)
@command
def create(
    c: Any,
    provider: str = "",
    gpu: str = "",
    count: int = 1,
    name: str = "",
    region: str = "",
    reservation: str = "",
    no_wait: bool = False,
    json: bool = False,
) -> None:
    """Create COUNT VMs of one GPU shape at one provider and wait until they run."""
    from vmops.catalogue import provider_entry, resolve_type
    from vmops.model import CreateRequest, ReservationPolicy
    from vmops.providers.base import TARGETS
    from vmops.session import parse_shape_for

    with _session() as s:
        pname = s.check_provider(_need(provider, "--provider"))
        parse_shape_for(pname, _need(gpu, "--gpu"))
        native = resolve_type(pname, gpu)
        if count < 1:
            raise usage(f"--count must be at least 1 (got {count})")
        if count > MAX_CREATE_COUNT:
            raise usage(f"--count {count} is more than {MAX_CREATE_COUNT} VMs in one create",
                        hint="Use `vm fleet create` for more VMs")
        if name:
            check_vm_name(name)
        try:
            native_region = provider_entry(pname).resolve_region(region or None)
        except ValueError as e:
            raise usage(str(e)) from None
        base = name or f"vm-{secrets.token_hex(3)}"
        names = [base] if count == 1 else [f"{base}-{i}" for i in range(count)]
        adapter = s.provider(pname)
        policy = ReservationPolicy.STRICT if reservation else ReservationPolicy.AUTO
        made: list[Instance] = []
        errors: list[tuple[str, VmopsError]] = []
        try:
            for vm_name in names:
                req = CreateRequest(name=vm_name, native_type=native.name, region=native_region,
                                    reservation_policy=policy, reservation_ids=(reservation,) if reservation else ())
                try:
                    inst = adapter.create(req, wait=False)
                except VmopsError as e:
                    errors.append((vm_name, e))
                    break  # the next would very likely fail the same way; report what was made
                made.append(inst)
                where = f" in {inst.region}" if inst.region and not native_region else ""
                note(f"{pname}: accepted {inst.name} ({inst.id}){where}")
            if made and not no_wait:
                note(f"{pname}: waiting for {len(made)} VM(s) to run ...")
                settled = adapter.wait_for({i.id: TARGETS["create"] for i in made})
                made = [settled[i.id] for i in made]
        except KeyboardInterrupt:
            if not made:
                raise
            ids = ", ".join(f"{i.name} ({i.id})" for i in made)
            raise Interrupted(f"interrupted; these VMs were accepted and may be running (and billing): {ids}",
                              hint=f"Check with `vm list --provider {pname}`; remove with "
                                   f"`vm destroy ID --provider {pname}`") from None
        for i in made:  # waited for, but not running (e.g. the provider put it in error)
            if not no_wait and i.state.value != "running":
                errors.append((i.name, VmopsError(f"{i.name} ({i.id}) ended {i.state.value}")))
        _show_instances(made, json, single=False)
        if errors:
            first_name, first = errors[0]
            if not made:
                raise first
            raise PartialFailure(
                f"made {len(made)} of {count} VM(s); {first_name} failed: {first.message}",
                hint="The VMs above exist and bill; destroy them or retry the rest",
            )


def _one(verb: str):
    """Build the task for a single-instance verb."""

    def run(provider: str, instance_id: str | None, no_wait: bool, as_json: bool) -> None:
        with _session() as s:
            pname = s.check_provider(_need(provider, "--provider"))
            iid = _need(instance_id, "INSTANCE_ID")
            adapter = s.provider(pname)
            if verb == "get":
                inst = adapter.get_instance(iid)
            else:
                inst = getattr(adapter, verb)(iid, wait=not no_wait)
            _show_instances([inst], as_json, single=True)

    if verb == "get":
        @command
        def body(c: Any, instance_id: str | None = None, provider: str = "", json: bool = False) -> None:
            run(provider, instance_id, False, json)
    else:
        @command
        def body(c: Any, instance_id: str | None = None, provider: str = "", no_wait: bool = False,  # type: ignore[misc]
                 json: bool = False) -> None:
            run(provider, instance_id, no_wait, json)

    body.__name__ = verb
    body.__doc__ = {
        "get": "Show one VM.",
        "stop": "Stop a VM and wait until it is stopped.",
        "start": "Start a stopped VM and wait until it runs.",
        "destroy": "Destroy a VM and wait until the provider no longer has it.",
        "reboot": "Reboot a running VM (soft).",
        "reset": "Reset a running VM (hard).",
        "restart": "Restart a running VM (stop + start; the public IP may change).",
    }[verb]
    help_ = {"instance_id": "The provider's instance id (see `vm list`)", "provider": PROVIDER_HELP, "json": JSON_HELP}
    if verb != "get":
        help_["no_wait"] = WAIT_HELP
    return task(body, name=verb, positional=["instance_id"], help=help_)


get = _one("get")
stop = _one("stop")
start = _one("start")
destroy = _one("destroy")
reboot = _one("reboot")
reset = _one("reset")
restart = _one("restart")

OFFER_COLUMNS = (
    Column("provider", "PROVIDER"),
    Column("gpu", "GPU"),
    Column("native_type", "TYPE"),
    Column("region", "REGION"),
    Column("billing", "BILLING"),
    Column("available", "AVAILABLE", ">"),
    Column("price_per_hour", "$/HR", ">"),
    Column("price_source", "PRICE FROM"),
)


@task(help={"gpu": "Only this GPU shape (e.g. h100:8)", "provider": PROVIDER_HELP, "json": JSON_HELP})
@command
def capacity(c: Any, gpu: str = "", provider: str = "", json: bool = False) -> None:
    """What each provider can supply now, per region, with price per VM-hour."""
    from vmops.session import parse_shape_for

    with _session() as s:
        names = s.provider_names(provider or None)
        shape = parse_shape_for(names[0] if provider else None, gpu) if gpu else None
        result = s.offers(shape, names)
        offers = result.flat()
        rows = []
        for o in offers:
            d = o.to_dict()
            d["billing"] = f"reserved {o.reservation_id}" if o.reserved else "on-demand"
            if o.available is None:
                d["available"] = {True: "yes", False: "none", None: "unknown"}[o.has_capacity]
            rows.append(d)
        if json:
            print_json(rows)
        else:
            print_table(rows, OFFER_COLUMNS, empty="(no offers)")
        raise_failures(result.failures, names, "asked for capacity")


RESERVATION_COLUMNS = (
    Column("provider", "PROVIDER"),
    Column("id", "ID"),
    Column("native_type", "TYPE"),
    Column("gpu", "GPU"),
    Column("region", "REGION"),
    Column("active", "ACTIVE"),
    Column("total_vms", "TOTAL", ">"),
    Column("used_vms", "USED", ">"),
    Column("available_vms", "FREE", ">"),
    Column("price_per_hour", "$/VM-HR", ">"),
)


@task(help={"provider": PROVIDER_HELP + " (default: every enabled provider)", "json": JSON_HELP})
@command
def reservations(c: Any, provider: str = "", json: bool = False) -> None:
    """List reserved capacity at each provider (in VMs)."""
    with _session() as s:
        names = s.provider_names(provider or None)
        result = s.reservations(names)
        rows = [r.to_dict() for r in result.flat()]
        if json:
            print_json(rows)
        else:
            print_table(rows, RESERVATION_COLUMNS, empty="(no reservations)")
        raise_failures(result.failures, names, "asked for reservations")


@task(name="show", help={"json": JSON_HELP})
@command
def config_show(c: Any, json: bool = False) -> None:
    """Print the effective configuration (API keys masked) and where each setting came from."""
    s = _session()
    d = s.config.describe()
    if json:
        print_json(d)
        return
    print(f"home:          {d['home']}")
    print(f"state file:    {d['state_file']}")
    print(f"providers:     {', '.join(d['enabled'])}")
    print(f"poll interval: {d['poll_min']}-{d['poll_interval']}s   operation timeout: {d['op_timeout']}s")
    rows = [{"provider": n, **v, "sources": ",".join(f"{k}={src}" for k, src in v["sources"].items())}
            for n, v in d["providers"].items()]
    print_table(rows, (Column("provider", "PROVIDER"), Column("url", "ENDPOINT"), Column("api_key", "API KEY"),
                       Column("scope", "PROJECT/PARENT"), Column("ssh_key", "SSH KEY"), Column("tls", "TLS")))


@task(name="init")
@command
def config_init(c: Any) -> None:
    """Write a commented $VMOPS_HOME/config.toml template (mode 0600, no keys); never overwrites one."""
    import os

    from vmops.config import default_home, write_config_template
    from vmops.errors import FailedPrecondition

    home = default_home(os.environ)
    try:
        path = write_config_template(home)
    except FileExistsError:
        raise FailedPrecondition(f"{home / 'config.toml'} already exists; vmops never rewrites it",
                                 hint="Edit it by hand (`vm config show` prints what it sets)") from None
    except OSError as e:
        raise UsageError(f"cannot write {home / 'config.toml'} ({e.strerror or e})",
                         hint="Check VMOPS_HOME and its permissions") from None
    note(f"wrote {path} (mode 0600); put keys in environment variables or key files it names")


config_ns = Collection("config", config_show, config_init)
VM_TASKS = (list_, create, get, stop, start, destroy, reboot, reset, restart, capacity, reservations)
