"""The repo's invoke tasks for the `vm` commands (`inv vm.list`, `inv fleet.create ...`), made from the click
command tree: each task's flags are the command's options, and its body runs the same command through
``vmops.cli.main.run`` (one implementation; the exit code becomes the task's).

Used by tasks.py only; `vm` itself never imports invoke.
"""

from __future__ import annotations

import inspect
from typing import Any, Iterator

import click
from invoke import Collection, Task
import keyword

from invoke.exceptions import Exit


def _flag_name(p: click.Parameter) -> str:
    """The invoke parameter name for a click parameter: its long flag without dashes, underscored."""
    if isinstance(p, click.Argument):
        return p.name or "arg"
    longs = [o for o in p.opts if o.startswith("--")]
    name = (longs[0] if longs else p.opts[0]).lstrip("-").replace("-", "_")
    return name + "_" if keyword.iskeyword(name) else name  # --from: invoke flag --from (trailing _ dropped)


def _invoke_default(p: click.Parameter) -> Any:
    if isinstance(p, click.Option) and p.is_flag:
        return False
    if isinstance(p, click.Option) and p.count:
        return 0
    if p.multiple:
        return None
    default = p.default if isinstance(p.default, (str, int, float)) else None  # click's "unset" is a sentinel
    if isinstance(p.type, click.Choice) or default is None:
        return "" if not isinstance(p, click.Argument) else None
    return default


def to_argv(cmd: click.Command, kwargs: dict[str, Any]) -> list[str]:
    """The `vm` arguments for a task call's keyword arguments (only what differs from the defaults)."""
    argv: list[str] = []
    positionals: list[str] = []
    for p in cmd.params:
        if p.name == "help" or not p.opts:
            continue
        value = kwargs.get(_flag_name(p))
        if isinstance(p, click.Argument):  # an optional one is a --flag in inv, a positional in vm
            if value not in (None, ""):
                positionals.append(str(value))
            continue
        flag = next((o for o in p.opts if o.startswith("--")), p.opts[0])
        if isinstance(p, click.Option) and p.is_flag:
            if value:
                argv.append(flag)
        elif isinstance(p, click.Option) and p.count:
            argv += [flag] * int(value or 0)
        elif p.multiple:
            for v in value or []:
                argv += [flag, str(v)]
        elif value not in (None, "") and value != _invoke_default(p):
            argv += [flag, str(value)]
    return positionals + argv


def task_for(cmd: click.Command, path: list[str]) -> Task:
    """An invoke Task that runs `vm <path> ...` with the task's flags."""
    params = [p for p in cmd.params if p.opts and p.name != "help"]
    positional = [_flag_name(p) for p in params if isinstance(p, click.Argument) and p.required]
    sig = [inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for p in params:
        sig.append(inspect.Parameter(_flag_name(p), inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                     default=_invoke_default(p)))

    def body(c: Any, **kwargs: Any) -> None:
        from vmops.cli.main import run

        code = run(["vm", *path, *to_argv(cmd, kwargs)])
        if code:
            raise Exit(code=code)

    body.__signature__ = inspect.Signature(sig)  # type: ignore[attr-defined]
    body.__doc__ = cmd.help
    body.__name__ = path[-1]
    helps = {_flag_name(p): (getattr(p, "help", None) or "") for p in params}
    return Task(body, name=path[-1], positional=positional,
                iterable=[_flag_name(p) for p in params if p.multiple],
                incrementable=[_flag_name(p) for p in params if isinstance(p, click.Option) and p.count],
                help={k: v for k, v in helps.items() if v})


def walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every (path, command) under ``group``, groups included, loading each command."""
    ctx = click.Context(group, info_name=path[-1] if path else "vm")
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None:
            continue
        yield (*path, name), cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, (*path, name))


def collection_for(group: click.Group, name: str, path: list[str]) -> Collection:
    coll = Collection(name)
    ctx = click.Context(group, info_name=name)
    for sub in group.list_commands(ctx):
        cmd = group.get_command(ctx, sub)
        if cmd is None or sub in ("help", "completion"):
            continue
        if isinstance(cmd, click.Group):
            coll.add_collection(collection_for(cmd, sub, [*path, sub]))
        else:
            coll.add_task(task_for(cmd, [*path, sub]))
    return coll


def inv_namespace() -> Collection:
    """`inv vm.list`, `inv vm.config.show`, `inv fleet.create`, `inv sim.up`, `inv playbook.run`."""
    from vmops.cli.app import cli

    ns = Collection()
    vm = Collection("vm")
    ctx = click.Context(cli, info_name="vm")
    for name in cli.list_commands(ctx):
        cmd = cli.get_command(ctx, name)
        if cmd is None or name in ("help", "completion"):
            continue
        if isinstance(cmd, click.Group):
            sub = collection_for(cmd, name, [name])
            if name == "config":
                vm.add_collection(sub)
            else:
                ns.add_collection(sub)
        else:
            vm.add_task(task_for(cmd, [name]))
    ns.add_collection(vm)
    return ns
