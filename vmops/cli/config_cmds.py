"""`vm config show|init`, and the check every provider command makes first: a real (non-loopback) endpoint
with no API key configured is an error naming the variable to set, never a silent simulator test key."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from vmops.cli.base import command, group, make_output, output_options
from vmops.cli.output import Column, note, print_json, print_rows
from vmops.config import TUNING, check_key, missing_key  # noqa: F401 - the rule lives in vmops.config
from vmops.errors import UsageError

if TYPE_CHECKING:
    from vmops.config import Config

#: Where a setting's value came from, in words (config.ProviderSettings.sources).
SOURCE_WORDS = {"env": "environment", "file": "config file", "default": "default", "global": "global setting",
                "key-file": "key file"}


def _source(src: str | None) -> str:
    if not src:
        return "-"
    kind, _, detail = src.partition(":")
    if kind in SOURCE_WORDS:
        return f"{SOURCE_WORDS[kind]} {detail}".strip()
    return src  # already words


SETTING_COLUMNS = (
    Column("provider", "PROVIDER", keep=True),
    Column("setting", "SETTING", keep=True),
    Column("value", "VALUE", keep=True),
    Column("source", "SOURCE", keep=True),
)
ENV_NAMES = {"url": "{P}_{URL}", "scope": "{P}_{SCOPE}", "ssh_key": "{P}_SSH_KEY", "tls": "{P}_TLS",
             "region": "{P}_REGION", "ca_bundle": "{P}_CA_BUNDLE", "request_interval": "{P}_REQUEST_INTERVAL",
             "launch_interval": "{P}_LAUNCH_INTERVAL", "terminate_batch": "{P}_TERMINATE_BATCH"}


def setting_rows(config: "Config") -> list[dict[str, Any]]:
    """One row per provider setting: value (keys masked), where it came from, the variable that sets it."""
    from vmops.catalogue import PROVIDERS

    rows = []
    for name, s in config.providers.items():
        entry = PROVIDERS[name]
        d = s.describe()
        for key in ("url", "api_key", "scope", "ssh_key", "tls", "ca_bundle", "region", *TUNING):
            if (key == "scope" and not entry.scope_var) or (key in TUNING and key not in d):
                continue
            src = s.sources.get(key)
            if key == "tls" and src == "default":
                src = "default (from the URL scheme)"
            if key == "api_key" and src == "default":
                src = "default (simulator test key)"
            variable = (f"VMOPS_{name.upper()}_API_KEY" if key == "api_key" else
                        "VMOPS_" + ENV_NAMES[key].format(P=name.upper(), URL=entry.url_var, SCOPE=entry.scope_var))
            value = d[key]
            if key == "api_key" and missing_key(config, name):
                value = f"(none: set {missing_key(config, name)})"
            rows.append({"provider": name, "setting": key, "value": value, "source": _source(src),
                         "variable": variable})
    return rows


@group("config")
def config() -> None:
    """Show or start the configuration (environment, config file, defaults)."""


@command("show", examples=["vm config show", "vm config show -o json   # with each setting's source"])
@output_options()
def config_show(output: str, as_json: bool, wide: bool) -> None:
    """Print the effective configuration (API keys masked) and where each setting came from."""
    from vmops.config import load_config

    out = make_output(output, as_json, wide)
    try:
        cfg = load_config()
    except ValueError as e:
        raise UsageError(str(e), hint="Fix the configuration file or VMOPS_* variables") from None
    d = cfg.describe()
    rows = setting_rows(cfg)
    if out.fmt == "json":
        d["settings"] = rows
        print_json(d)
        return
    if out.fmt == "csv":
        print_rows(rows, SETTING_COLUMNS, "csv", fields=["provider", "setting", "value", "source", "variable"])
        return
    file_state = "present" if cfg.config_path.exists() else "absent"
    print(f"home:          {d['home']}  ({'VMOPS_HOME' if os.environ.get('VMOPS_HOME') else 'default'})")
    print(f"config file:   {cfg.config_path}  ({file_state})")
    print(f"state file:    {d['state_file']}")
    print(f"providers:     {', '.join(d['enabled'])}  "
          f"({'VMOPS_PROVIDERS' if os.environ.get('VMOPS_PROVIDERS') else 'config file or default'})")
    print(f"poll interval: {d['poll_min']}-{d['poll_interval']}s   operation timeout: {d['op_timeout']}s")
    print()
    print_rows(rows, SETTING_COLUMNS, "table", wide=out.wide)  # (warnings: printed once by vmops.cli.app)


@command("init", examples=["vm config init && $EDITOR ~/.vmops/config.toml",
                           "VMOPS_HOME=/srv/vmops vm config init   # another home"])
def config_init() -> None:
    """Write a commented $VMOPS_HOME/config.toml template (mode 0600, no keys); never overwrites one."""
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


config.add_command(config_show)
config.add_command(config_init)
