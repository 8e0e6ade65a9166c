"""Configuration: endpoints, keys and scopes per provider, from environment, config file, or defaults.

Precedence: environment variable > ``$VMOPS_HOME/config.toml`` > catalogue default (the bundled
simulators and their test keys). Variable names are part of the interface:
``VMOPS_<PROVIDER>_URL`` (Nebius: ``_ENDPOINT``), ``_API_KEY``, ``_PROJECT`` (Nebius: ``_PARENT``),
``_SSH_KEY``, ``_TLS``, ``_REGION``; and ``VMOPS_HOME``, ``VMOPS_PROVIDERS`` (comma list of enabled
providers), ``VMOPS_POLL_INTERVAL``, ``VMOPS_OP_TIMEOUT``.

Config file layout (TOML)::

    providers = ["crusoe", "lambda", "nebius"]
    poll_interval = 1.0
    op_timeout = 600

    [crusoe]
    url = "https://api.crusoecloud.com"
    api_key = "..."          # or api_key_env = "MY_CRUSOE_KEY" to keep the key out of the file
    project = "..."
    ssh_key = "ops-key"
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vmops.catalogue import PROVIDERS, ProviderEntry


class Secret:
    """A secret string that never prints itself. Use ``reveal()`` only where it goes on the wire."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def masked(self) -> str:
        v = self._value
        if not v:
            return "(not set)"
        return "****" + v[-3:] if len(v) >= 12 else "****"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return f"Secret({self.masked()})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ProviderSettings:
    """How to reach one provider. ``url`` is a base URL (REST) or ``host:port`` (gRPC)."""

    name: str
    url: str
    api_key: Secret
    scope: str | None = None  # Crusoe project / Nebius parent
    ssh_key: str = "vmops"
    tls: bool = False
    region: str | None = None  # display region for providers without regions
    sources: Mapping[str, str] = field(default_factory=dict)  # setting -> "env"/"file"/"default"

    def describe(self) -> dict[str, Any]:
        """Printable view, key masked."""
        return {
            "url": self.url,
            "api_key": self.api_key.masked(),
            "scope": self.scope,
            "ssh_key": self.ssh_key,
            "tls": self.tls,
            "region": self.region,
            "sources": dict(self.sources),
        }


@dataclass(frozen=True)
class Config:
    home: Path
    providers: Mapping[str, ProviderSettings]
    enabled: tuple[str, ...]
    poll_interval: float = 1.0
    op_timeout: float = 600.0

    @property
    def state_path(self) -> Path:
        return self.home / "state.db"

    def settings(self, provider: str) -> ProviderSettings:
        return self.providers[provider]

    def describe(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "state_file": str(self.state_path),
            "enabled": list(self.enabled),
            "poll_interval": self.poll_interval,
            "op_timeout": self.op_timeout,
            "providers": {n: s.describe() for n, s in self.providers.items()},
        }


def default_home(env: Mapping[str, str]) -> Path:
    if env.get("VMOPS_HOME"):
        return Path(env["VMOPS_HOME"]).expanduser()
    return Path.home() / ".vmops"


def _truthy(v: str) -> bool:
    return v.strip().lower() in ("1", "true", "yes", "on")


def _provider_settings(entry: ProviderEntry, env: Mapping[str, str], section: Mapping[str, Any]) -> ProviderSettings:
    prefix = f"VMOPS_{entry.name.upper()}_"
    sources: dict[str, str] = {}

    def pick(key: str, env_suffix: str | None, file_keys: tuple[str, ...], default: Any) -> Any:
        if env_suffix and env.get(prefix + env_suffix, "") != "":
            sources[key] = "env"
            return env[prefix + env_suffix]
        for fk in file_keys:
            if fk in section:
                sources[key] = "file"
                return section[fk]
        sources[key] = "default"
        return default

    url = str(pick("url", entry.url_var, ("url", "endpoint"), entry.default_url))
    key_env_name = section.get("api_key_env")
    if key_env_name and env.get(prefix + "API_KEY", "") == "" and env.get(str(key_env_name)):
        api_key = env[str(key_env_name)]
        sources["api_key"] = f"env:{key_env_name}"
    else:
        api_key = str(pick("api_key", "API_KEY", ("api_key",), entry.default_api_key))
    scope = pick("scope", entry.scope_var, ("project", "parent", "scope"), entry.default_scope) if entry.scope_var else None
    ssh_key = str(pick("ssh_key", "SSH_KEY", ("ssh_key",), "vmops"))
    tls_raw = pick("tls", "TLS", ("tls",), None)
    tls = _truthy(str(tls_raw)) if tls_raw is not None else url.startswith("https://")
    region = pick("region", "REGION", ("region",), None)
    return ProviderSettings(
        name=entry.name,
        url=url.rstrip("/"),
        api_key=Secret(api_key),
        scope=str(scope) if scope is not None else None,
        ssh_key=ssh_key,
        tls=tls,
        region=str(region) if region else None,
        sources=sources,
    )


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Build the effective configuration. Never raises for a missing file; raises ValueError for a bad one."""
    env = os.environ if env is None else env
    home = default_home(env)
    file_data: dict[str, Any] = {}
    path = home / "config.toml"
    if path.exists():
        try:
            file_data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML ({e})") from e
    providers = {
        name: _provider_settings(entry, env, file_data.get(name, {}) or {}) for name, entry in PROVIDERS.items()
    }
    enabled_raw = env.get("VMOPS_PROVIDERS") or ",".join(file_data.get("providers", PROVIDERS.keys()))
    enabled = tuple(p.strip().lower() for p in enabled_raw.split(",") if p.strip())
    unknown = [p for p in enabled if p not in PROVIDERS]
    if unknown:
        raise ValueError(f"unknown provider(s) in VMOPS_PROVIDERS/config: {', '.join(unknown)}; known: {', '.join(PROVIDERS)}")
    poll = float(env.get("VMOPS_POLL_INTERVAL") or file_data.get("poll_interval", 1.0))
    timeout = float(env.get("VMOPS_OP_TIMEOUT") or file_data.get("op_timeout", 600.0))
    return Config(home=home, providers=providers, enabled=enabled, poll_interval=poll, op_timeout=timeout)
