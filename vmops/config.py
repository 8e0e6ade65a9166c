"""Configuration: endpoints, keys and scopes per provider, from environment, config file, or defaults.

Precedence: environment variable > ``$VMOPS_HOME/config.toml`` > catalogue default (the bundled
simulators and their test keys). Variable names are part of the interface:
``VMOPS_<PROVIDER>_URL`` (Nebius: ``_ENDPOINT``), ``_API_KEY``, ``_PROJECT`` (Nebius: ``_PARENT``),
``_API_KEY_FILE``, ``_SSH_KEY``, ``_TLS``, ``_REGION``, ``_CA_BUNDLE``; and ``VMOPS_HOME``,
``VMOPS_PROVIDERS`` (comma list of enabled providers), ``VMOPS_POLL_INTERVAL``, ``VMOPS_OP_TIMEOUT``,
``VMOPS_DEADLINE`` (seconds a command waits for a provider's answer), ``VMOPS_BREAKER_SECONDS`` (how long a
provider that just failed is skipped by reads; 0 = never skip),
``VMOPS_CA_BUNDLE`` (PEM file of CA certificates trusted for every provider's TLS endpoint),
``VMOPS_DB_URL`` (where the state lives: ``sqlite:///path`` or ``postgresql://user@host:port/dbname``;
default ``$VMOPS_HOME/state.db``; its password is never shown: vmops.state.pg_backend).

Dialect (``VMOPS_<P>_DIALECT`` or ``dialect =`` in the provider's section): ``reference`` (the reference test
servers and the bundled simulators) or ``cloud`` (the provider's real public API); the default is ``cloud`` when
the URL's host is one of the provider's public hosts (``vmops.catalogue``), else ``reference``. In the cloud
dialect a provider may read its secret from more variables first (Crusoe: ``VMOPS_CRUSOE_SECRET_KEY`` /
``_SECRET_KEY_FILE``, with ``VMOPS_CRUSOE_ACCESS_KEY_ID`` as ``key_id``; then the ``[default]`` profile of
``~/.crusoe/config``, or the file named by ``VMOPS_CRUSOE_PROFILE``), and ``VMOPS_CRUSOE_ORGANIZATION_ID``
(``organization_id`` in [crusoe]) names the organization whose reservations apply (default: the project's).

Key sources, first found wins: ``VMOPS_<P>_API_KEY``, ``VMOPS_<P>_API_KEY_FILE``, the variable named by
``api_key_env``, the file named by ``api_key_file``, ``api_key``, the default (simulator test key). vmops
only ever reads these; nothing writes a key anywhere. A config file holding a key, and a key file, that
group/others can access produce a warning (``Config.warnings``), as does plaintext (http:// or insecure
gRPC) to a host other than loopback.

Config file layout (TOML)::

    providers = ["crusoe", "lambda", "nebius"]
    db_url = "postgresql://vmops@db.example:5432/vmops"   # team state (default: $VMOPS_HOME/state.db)
    poll_interval = 1.0
    op_timeout = 600
    deadline = 10            # seconds; a provider silent this long is reported unavailable
    breaker = 30             # seconds; a provider that just failed is skipped by reads (0 = off)

    [crusoe]
    url = "https://api.crusoecloud.com"
    api_key = "..."          # or api_key_env = "MY_CRUSOE_KEY" / api_key_file = "~/.crusoe.key"
    project = "..."
    ca_bundle = "/etc/ssl/private-ca.pem"   # CA certificates to trust (default: the system's)
    ssh_key = "ops-key"
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from vmops.catalogue import PROVIDERS, ProviderEntry


#: every secret value revealed in this process (they are the ones that can reach a log line): redact() masks them
_REVEALED: set[str] = set()
_AUTH_VALUE = re.compile(r"""(?i)(authorization["']?\s*[:=,]\s*\(?["']?(?:bearer\s+|basic\s+)?)[^\s"',)]+""")
_BEARER = re.compile(r"(?i)\b(bearer\s+)(?!\*\*\*\*)[^\s\"',)]+")


def redact(text: str) -> str:
    """``text`` with every revealed key and every Authorization/Bearer value replaced by ``****``
    (debug logs and tracebacks go through this)."""
    for value in sorted(_REVEALED, key=len, reverse=True):
        if len(value) >= 4:
            text = text.replace(value, "****")
    text = _AUTH_VALUE.sub(r"\1****", text)
    return _BEARER.sub(r"\1****", text)


class Secret:
    """A secret string that never prints itself. Use ``reveal()`` only where it goes on the wire."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        if self._value:
            _REVEALED.add(self._value)
        return self._value

    def sendable(self) -> bool:
        """Can the key go in an HTTP header / gRPC metadata value (printable ASCII, no control characters)?"""
        return all(" " <= c <= "~" for c in self._value)

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
class NebiusCloudSettings:
    """Settings only the Nebius cloud dialect reads (../shared/cloud-apis.md section 3; docs/design.md).

    ``VMOPS_NEBIUS_IAM_TOKEN`` (static token), ``VMOPS_NEBIUS_CREDENTIALS_FILE`` (service-account JSON),
    ``VMOPS_NEBIUS_TOKEN_ENDPOINT``, ``VMOPS_NEBIUS_VPC_ENDPOINT`` (both default: the public hosts when the
    endpoint is Nebius' public one, else the endpoint itself), ``VMOPS_NEBIUS_SUBNET``,
    ``VMOPS_NEBIUS_IMAGE_FAMILY``, ``VMOPS_NEBIUS_SSH_PUBLIC_KEY_FILE``, ``VMOPS_NEBIUS_PAGE_SIZE``; the same
    names in lower case in the ``[nebius]`` config section.
    """

    iam_token: Secret = field(default_factory=lambda: Secret(""))
    credentials_file: str | None = None
    token_endpoint: str | None = None
    vpc_endpoint: str | None = None
    subnet: str | None = None
    image_family: str | None = None
    ssh_public_key_file: str | None = None
    page_size: int = 100

    def describe(self) -> dict[str, Any]:
        discovered = "discovered at first use (`vm doctor` shows the result)"
        return {"iam_token": self.iam_token.masked(), "credentials_file": self.credentials_file,
                "token_endpoint": self.token_endpoint, "vpc_endpoint": self.vpc_endpoint, "subnet": self.subnet,
                "subnet_source": "config" if self.subnet else discovered,
                "image_family": self.image_family,
                "image_family_source": "config" if self.image_family else discovered,
                "ssh_public_key_file": self.ssh_public_key_file, "page_size": self.page_size}


def _nebius_cloud_settings(env: Mapping[str, str], section: Mapping[str, Any]) -> NebiusCloudSettings:
    def get(name: str) -> str | None:
        value = env.get("VMOPS_NEBIUS_" + name.upper()) or section.get(name)
        return str(value).strip() if value not in (None, "") else None

    files = {k: str(Path(v).expanduser()) if v else None
             for k, v in (("credentials_file", get("credentials_file")),
                          ("ssh_public_key_file", get("ssh_public_key_file")))}
    page = get("page_size")
    return NebiusCloudSettings(iam_token=Secret(get("iam_token") or ""), token_endpoint=get("token_endpoint"),
                               vpc_endpoint=get("vpc_endpoint"), subnet=get("subnet"),
                               image_family=get("image_family"), page_size=int(page) if page else 100, **files)


#: per-provider tuning settings whose default is the catalogue's for the dialect (shown only once set)
TUNING = ("request_interval", "launch_interval", "terminate_batch")


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
    ca_bundle: str | None = None  # PEM file of CA certificates to trust instead of the system's
    key_file: str | None = None  # the file the key was read from (for the permission check)
    dialect: str = "reference"  # "reference" | "cloud" (vmops.catalogue.DIALECTS)
    key_id: str | None = None  # a non-secret key id sent with signatures (Crusoe cloud: access key id)
    ssh_public_key_file: str | None = None  # public key text for clouds that take it (Crusoe/Nebius cloud)
    request_interval: float | None = None  # client-side pacing; None = the catalogue's value for the dialect
    launch_interval: float | None = None
    terminate_batch: int | None = None  # ids per terminate call (Lambda); None = the catalogue's for the dialect
    nebius_cloud: NebiusCloudSettings | None = None  # Nebius only: what its cloud dialect reads
    #: Crusoe cloud only: the organization whose reservations apply (``VMOPS_CRUSOE_ORGANIZATION_ID`` or
    #: ``organization_id`` in [crusoe]); None = the project's, from ``GET /organizations/projects``
    organization: str | None = None

    def describe(self) -> dict[str, Any]:
        """Printable view, key masked."""
        return {
            "dialect": self.dialect,
            "url": self.url,
            "api_key": self.api_key.masked(),
            "key_id": _mask_id(self.key_id),
            "scope": self.scope,
            **({"organization": self.organization} if self.organization else {}),
            **{k: getattr(self, k) for k in TUNING if getattr(self, k) is not None},
            "ssh_key": self.ssh_key,
            "tls": self.tls,
            "ca_bundle": self.ca_bundle,
            "region": self.region,
            "sources": dict(self.sources),
            **({"nebius_cloud": self.nebius_cloud.describe()} if self.nebius_cloud else {}),
        }


@dataclass(frozen=True)
class Config:
    home: Path
    providers: Mapping[str, ProviderSettings]
    enabled: tuple[str, ...]
    poll_interval: float = 1.0
    op_timeout: float = 600.0
    poll_min: float = 0.05  # shortest pause between polls (waits poll proportionally: section 3 of design.md)
    deadline: float = 10.0  # the longest a command waits for any one answer of a provider (design.md, "Deadlines")
    breaker_seconds: float = 30.0  # a provider that just failed is skipped by reads this long (0 = never)
    warnings: tuple[str, ...] = ()  # insecure settings found while loading (the CLI prints them once)
    db_url: str | None = None  # VMOPS_DB_URL / db_url: the state store; None = state_path (may hold a password)

    @property
    def config_path(self) -> Path:
        return self.home / "config.toml"

    @property
    def state_path(self) -> Path:
        return self.home / "state.db"

    def settings(self, provider: str) -> ProviderSettings:
        return self.providers[provider]

    def describe(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "state_file": str(self.state_path),
            "db_url": mask_db_url(self.db_url) if self.db_url else None,
            "enabled": list(self.enabled),
            "poll_interval": self.poll_interval,
            "poll_min": self.poll_min,
            "op_timeout": self.op_timeout,
            "deadline": self.deadline,
            "breaker_seconds": self.breaker_seconds,
            "providers": {n: s.describe() for n, s in self.providers.items()},
            "warnings": list(self.warnings),
        }


def mask_db_url(url: str) -> str:
    """A database URL with its password (user:PASSWORD@ or ?password=) replaced by ``****``."""
    url = re.sub(r"^([a-zA-Z][\w+.-]*://[^/@:]*):[^/@]*@", r"\1:****@", url)
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1****", url)
def _mask_id(key_id: str | None) -> str | None:
    """A key id shown with its first four characters only (it is not a secret, but it names an account)."""
    if not key_id:
        return None
    return key_id[:4] + "****" if len(key_id) > 8 else "****"


def _read_profile(path_text: str, env_var: str) -> dict[str, str]:
    """The ``[default]`` profile of a provider CLI's TOML config (Crusoe: ~/.crusoe/config); {} if absent."""
    path = Path(path_text).expanduser()
    if not path.is_file():
        return {}
    import tomllib  # only when there is a profile file (start-up)

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"the profile file {path} ({env_var}) cannot be read ({type(e).__name__})") from None
    section = data.get("default")
    if not isinstance(section, dict):
        return {}
    return {str(k): str(v) for k, v in section.items() if isinstance(v, (str, int))}


def _dialect(entry: ProviderEntry, env: Mapping[str, str], section: Mapping[str, Any], url: str,
             sources: dict[str, str]) -> str:
    prefix = f"VMOPS_{entry.name.upper()}_"
    if env.get(prefix + "DIALECT", "") != "":
        raw, sources["dialect"] = env[prefix + "DIALECT"], "env"
    elif "dialect" in section:
        raw, sources["dialect"] = str(section["dialect"]), "file"
    else:
        sources["dialect"] = "default"
        return entry.default_dialect(endpoint_host(url))
    dialect = raw.strip().lower()
    if dialect not in entry.adapters:
        raise ValueError(f"{prefix}DIALECT / dialect in [{entry.name}]: {raw!r} is not a dialect; "
                         f"one of {', '.join(entry.adapters)}")
    return dialect


def _cloud_secret(entry: ProviderEntry, env: Mapping[str, str], sources: dict[str, str]
                  ) -> tuple[str | None, str | None, str | None]:
    """(secret, key id, file it came from) from the cloud dialect's own variables or profile; the secret is
    None when none of them is set (the ``API_KEY`` sources apply then)."""
    prefix = f"VMOPS_{entry.name.upper()}_"
    key_id: str | None = None
    if entry.cloud_key_id_var:
        var = prefix + entry.cloud_key_id_var
        if env.get(var, "") != "":
            key_id, sources["key_id"] = env[var].strip(), "env"
        elif env.get(var + "_FILE", "") != "":
            key_id, sources["key_id"] = _read_key_file(env[var + "_FILE"], var + "_FILE"), "key-file"
    for suffix in entry.cloud_secret_vars:
        var = prefix + suffix
        if env.get(var, "") != "":
            sources["api_key"] = f"env:{var}"
            return env[var].strip(), key_id, None
        if env.get(var + "_FILE", "") != "":
            key_file = str(Path(env[var + "_FILE"]).expanduser())
            sources["api_key"] = f"key-file:{key_file}"
            return _read_key_file(key_file, var + "_FILE"), key_id, key_file
    if entry.cloud_profile:
        where = env.get(prefix + "PROFILE") or entry.cloud_profile
        if where.startswith("~/") and env.get("HOME"):
            where = str(Path(env["HOME"]) / where[2:])
        profile = _read_profile(where, prefix + "PROFILE")
        if profile.get("secret_key"):
            sources["api_key"] = f"profile:{where} [default]"
            if key_id is None and profile.get("access_key_id"):
                key_id, sources["key_id"] = profile["access_key_id"].strip(), f"profile:{where} [default]"
            return profile["secret_key"].strip(), key_id, str(Path(where).expanduser())
    return None, key_id, None


def default_home(env: Mapping[str, str]) -> Path:
    if env.get("VMOPS_HOME"):
        return Path(env["VMOPS_HOME"]).expanduser()
    return Path.home() / ".vmops"


def _truthy(v: str) -> bool:
    return v.strip().lower() in ("1", "true", "yes", "on")


def _read_key_file(path_text: str, where: str) -> str:
    """The key in a key file (surrounding whitespace and the final newline stripped). Errors name the path only."""
    path = Path(path_text).expanduser()
    try:
        value = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise ValueError(f"the API key file {path} ({where}) cannot be read ({reason})") from None
    if not value:
        raise ValueError(f"the API key file {path} ({where}) is empty")
    return value


def _loose_mode(path: Path) -> int | None:
    """The permission bits of ``path`` when group or others may access it, else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


def is_loopback_host(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    import ipaddress  # here, not at start-up: most commands never need it (plaintext endpoints only)

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint_host(url: str) -> str:
    """The host of a base URL (``https://h:1/x``) or a gRPC ``[scheme://]host:port`` endpoint."""
    rest = url.split("://", 1)[1] if "://" in url else url
    hostport = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if hostport.startswith("["):
        return hostport[1:].split("]", 1)[0]
    return hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 else hostport


def plaintext_remote(settings: "ProviderSettings") -> bool:
    """Would requests to this provider travel unencrypted to a host other than this machine?"""
    url = settings.url
    if "://" in url:
        scheme = url.split("://", 1)[0].lower()
        encrypted = scheme in ("https", "grpcs") or (scheme not in ("http", "grpc") and settings.tls)
    else:
        encrypted = settings.tls
    return not encrypted and not is_loopback_host(endpoint_host(url))


def security_warnings(config_path: Path, file_has_keys: bool, providers: Mapping[str, "ProviderSettings"],
                      enabled: tuple[str, ...]) -> tuple[str, ...]:
    """Insecure settings: key-holding files others can read, plaintext to a non-loopback host."""
    out: list[str] = []
    mode = _loose_mode(config_path) if file_has_keys else None
    if mode is not None:
        out.append(f"{config_path} holds API keys and is accessible by group/others (mode {mode:04o}); "
                   f"run `chmod 600 {config_path}`")
    seen: set[str] = set()
    for name in enabled:
        s = providers[name]
        if s.key_file and s.key_file not in seen:
            seen.add(s.key_file)
            mode = _loose_mode(Path(s.key_file))
            if mode is not None:
                out.append(f"the {name} API key file {s.key_file} is accessible by group/others "
                           f"(mode {mode:04o}); run `chmod 600 {s.key_file}`")
        if plaintext_remote(s):
            out.append(f"{name}: {s.url} is not encrypted and not on this machine: the API key and all "
                       f"traffic travel in clear text; use https:// (gRPC: VMOPS_NEBIUS_TLS=1 or grpcs://)")
    return tuple(out)


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
    dialect = _dialect(entry, env, section, url, sources)
    key_env_name = section.get("api_key_env")
    key_file: str | None = None
    cloud_secret, key_id, cloud_file = (_cloud_secret(entry, env, sources) if dialect == "cloud"
                                        else (None, None, None))
    if key_id is None and section.get("key_id"):
        key_id, sources["key_id"] = str(section["key_id"]), "file"
    if cloud_secret is not None:
        api_key, key_file = cloud_secret, cloud_file
    elif env.get(prefix + "API_KEY", "") != "":
        api_key = env[prefix + "API_KEY"]
        sources["api_key"] = "env"
    elif env.get(prefix + "API_KEY_FILE", "") != "":
        key_file = str(Path(env[prefix + "API_KEY_FILE"]).expanduser())
        api_key = _read_key_file(key_file, prefix + "API_KEY_FILE")
        sources["api_key"] = f"key-file:{key_file}"
    elif key_env_name and env.get(str(key_env_name)):
        api_key = env[str(key_env_name)]
        sources["api_key"] = f"env:{key_env_name}"
    elif section.get("api_key_file"):
        key_file = str(Path(str(section["api_key_file"])).expanduser())
        api_key = _read_key_file(key_file, f"api_key_file in [{entry.name}]")
        sources["api_key"] = f"key-file:{key_file}"
    else:
        api_key = str(pick("api_key", None, ("api_key",), entry.default_api_key))
    api_key = api_key.strip()
    if dialect == "cloud" and sources.get("api_key") == "default":
        api_key = ""  # the default is a simulator's test key: never send it to a real cloud
    scope = pick("scope", entry.scope_var, ("project", "parent", "scope"), entry.default_scope) if entry.scope_var else None
    if dialect == "cloud" and sources.get("scope") == "default":
        scope = None  # the default names a simulator's project; the cloud adapter discovers the account's own
    organization = (pick("organization", "ORGANIZATION_ID", ("organization_id", "organization"), None)
                    if entry.name == "crusoe" else None)
    ssh_key = str(pick("ssh_key", "SSH_KEY", ("ssh_key",), "vmops"))
    tls_raw = pick("tls", "TLS", ("tls",), None)
    tls = _truthy(str(tls_raw)) if tls_raw is not None else url.startswith("https://")
    region = pick("region", "REGION", ("region",), None)
    ca = pick("ca_bundle", "CA_BUNDLE", ("ca_bundle",), env.get("VMOPS_CA_BUNDLE") or None)
    pub = pick("ssh_public_key_file", "SSH_PUBLIC_KEY_FILE", ("ssh_public_key_file",), None)
    pacing: dict[str, float | None] = {}
    for key, suffix in (("request_interval", "REQUEST_INTERVAL"), ("launch_interval", "LAUNCH_INTERVAL")):
        raw = pick(key, suffix, (key,), None)
        try:
            pacing[key] = None if raw is None else float(raw)
        except ValueError:
            raise ValueError(f"{prefix}{suffix}: {raw!r} is not a number of seconds") from None
        if (pacing[key] or 0.0) < 0:
            raise ValueError(f"{prefix}{suffix} must not be negative")
    batch_raw = pick("terminate_batch", "TERMINATE_BATCH", ("terminate_batch",), None)
    try:
        terminate_batch = None if batch_raw is None else int(str(batch_raw))
    except ValueError:
        raise ValueError(f"{prefix}TERMINATE_BATCH: {batch_raw!r} is not a whole number") from None
    if terminate_batch is not None and terminate_batch < 1:
        raise ValueError(f"{prefix}TERMINATE_BATCH must be at least 1 (1 = one id per terminate call)")
    if sources.get("ca_bundle") == "default" and ca:
        sources["ca_bundle"] = "global"  # VMOPS_CA_BUNDLE or the top-level ca_bundle
    return ProviderSettings(
        name=entry.name,
        url=url.rstrip("/"),
        api_key=Secret(api_key),
        scope=str(scope) if scope is not None else None,
        ssh_key=ssh_key,
        tls=tls,
        region=str(region) if region else None,
        sources=sources,
        ca_bundle=str(Path(str(ca)).expanduser()) if ca else None,
        key_file=key_file,
        dialect=dialect,
        key_id=key_id,
        ssh_public_key_file=str(Path(str(pub)).expanduser()) if pub else None,
        request_interval=pacing["request_interval"],
        launch_interval=pacing["launch_interval"],
        terminate_batch=terminate_batch,
        nebius_cloud=_nebius_cloud_settings(env, section) if entry.name == "nebius" else None,
        organization=str(organization).strip() or None if organization else None,
    )


#: What a provider's section of config.toml may hold (read by ``_provider_settings``, ``_dialect`` and
#: ``_nebius_cloud_settings``); a key outside it is reported, since a typo (``ulr``) would otherwise be
#: ignored in silence and the default used in its place.
SECTION_KEYS = frozenset({
    "url", "endpoint", "dialect", "api_key", "api_key_env", "api_key_file", "key_id", "project", "parent", "scope",
    "organization", "organization_id", "ssh_key", "ssh_public_key_file", "tls", "region", "ca_bundle",
    "request_interval", "launch_interval", "terminate_batch", "iam_token", "credentials_file", "token_endpoint",
    "vpc_endpoint", "subnet", "image_family", "page_size"})
#: The top level of config.toml: these settings and one section per provider.
TOP_KEYS = frozenset({"providers", "deadline", "breaker", "ca_bundle", "db_url", "poll_interval", "op_timeout",
                      "poll_min", *PROVIDERS})


def unknown_settings(path: Path, file_data: Mapping[str, Any]) -> tuple[str, ...]:
    """A warning for each key of config.toml vmops does not read, with the known key it most resembles."""

    def said(key: str, where: str, known: frozenset[str]) -> str:
        import difflib  # only for a key that needs it: every command loads the configuration

        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        return (f"{path}: unknown setting {key!r}{where} is ignored"
                + (f" (did you mean {close[0]!r}?)" if close else ""))

    out = [said(k, "", TOP_KEYS) for k in file_data if k not in TOP_KEYS]
    for name in PROVIDERS:
        section = file_data.get(name)
        if isinstance(section, Mapping):
            out += [said(k, f" in [{name}]", SECTION_KEYS) for k in section if k not in SECTION_KEYS]
    return tuple(out)


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Build the effective configuration. Never raises for a missing file; raises ValueError for a bad one."""
    env = os.environ if env is None else env
    home = default_home(env)
    file_data: dict[str, Any] = {}
    path = home / "config.toml"
    if path.exists():
        import tomllib  # only when there is a file to read

        try:
            file_data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path}: not valid TOML ({e})") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"{path} cannot be read ({getattr(e, 'strerror', None) or type(e).__name__})") from None
    top_ca = file_data.get("ca_bundle")
    providers = {
        name: _provider_settings(entry, {**({"VMOPS_CA_BUNDLE": str(top_ca)} if top_ca else {}), **env},
                                 file_data.get(name, {}) or {})
        for name, entry in PROVIDERS.items()
    }
    enabled_raw = env.get("VMOPS_PROVIDERS") or ",".join(file_data.get("providers", PROVIDERS.keys()))
    enabled = tuple(p.strip().lower() for p in enabled_raw.split(",") if p.strip())
    unknown = [p for p in enabled if p not in PROVIDERS]
    if unknown:
        raise ValueError(f"unknown provider(s) in VMOPS_PROVIDERS/config: {', '.join(unknown)}; known: {', '.join(PROVIDERS)}")
    def seconds(var: str, key: str, default: float, *, zero: bool) -> float:
        """A duration setting: the environment, else the file, else the default; named when it is wrong."""
        where = var if env.get(var) else (f"{key} in {path}" if key in file_data else var)
        raw = env.get(var) or file_data.get(key, default)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {raw!r} is not a number of seconds") from None
        if not 0 <= value < float("inf") or (value == 0 and not zero):
            raise ValueError(f"{where} must be {'0 or more' if zero else 'more than 0'} seconds (got {raw!r})")
        return value

    poll = seconds("VMOPS_POLL_INTERVAL", "poll_interval", 1.0, zero=False)
    timeout = seconds("VMOPS_OP_TIMEOUT", "op_timeout", 600.0, zero=False)
    poll_min = seconds("VMOPS_POLL_MIN", "poll_min", 0.05, zero=True)
    deadline = seconds("VMOPS_DEADLINE", "deadline", 10.0, zero=False)
    breaker = seconds("VMOPS_BREAKER_SECONDS", "breaker", 30.0, zero=True)
    db_url = str(env.get("VMOPS_DB_URL") or file_data.get("db_url") or "").strip() or None
    has_keys = any(isinstance(v, dict) and "api_key" in v for v in file_data.values())
    warnings = unknown_settings(path, file_data) + security_warnings(path, has_keys, providers, enabled)
    return Config(home=home, providers=providers, enabled=enabled, poll_interval=poll, op_timeout=timeout,
                  poll_min=poll_min, deadline=deadline, breaker_seconds=breaker, warnings=warnings, db_url=db_url)


CONFIG_TEMPLATE = """\
# vmops configuration (see README "Pointing vmops at other endpoints").
# Environment variables (VMOPS_*) override everything here. Keep API keys out of this file:
# name an environment variable (api_key_env) or a file readable only by you (api_key_file).

# providers = ["crusoe", "lambda", "nebius"]
# deadline = 10   # seconds a command waits for a provider's answer before reporting it unavailable
# breaker = 30    # seconds reads skip a provider that just did not answer (0 = always ask)
# ca_bundle = "/etc/ssl/certs/my-private-ca.pem"   # CA certificates to trust for TLS (all providers)
# db_url = "postgresql://vmops@db.example:5432/vmops"  # shared team state; password: ~/.pgpass or VMOPS_DB_PASSWORD_FILE

[crusoe]
# url = "https://api.cloud.crusoe.ai/v1alpha5"   # a public host selects the real API (dialect = "cloud")
# dialect = "cloud"                              # or "reference" (reference test servers, simulators)
# api_key_env = "CRUSOE_API_KEY"
# api_key_file = "~/.config/vmops/crusoe.key"
# project = "my-project"

[lambda]
# url = "https://cloud.lambda.ai/api/v1"
# api_key_env = "LAMBDA_API_KEY"
# api_key_file = "~/.config/vmops/lambda.key"

[nebius]
# endpoint = "grpcs://compute.api.nebius.cloud:443"   # grpcs:// = TLS (or tls = true)
# api_key_env = "NEBIUS_API_KEY"
# api_key_file = "~/.config/vmops/nebius.key"
# parent = "project-..."
"""


def write_config_template(home: Path) -> Path:
    """Create ``home/config.toml`` (mode 0600, in a 0700 directory if it makes one) from the template.

    Refuses (FileExistsError) to touch an existing file: vmops never rewrites a file that may hold keys.
    """
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / "config.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, CONFIG_TEMPLATE.encode())
    finally:
        os.close(fd)
    return path


def missing_key(config: "Config", provider: str) -> str | None:
    """The variable to set when ``provider`` points at a real (non-loopback) endpoint but has only the
    simulator's test key: vmops never sends that key anywhere but a simulator."""
    s = config.settings(provider)
    if s.sources.get("api_key") != "default" or is_loopback_host(endpoint_host(s.url)):
        return None
    return f"VMOPS_{provider.upper()}_API_KEY"


def check_key(config: "Config", name: str) -> None:
    """Refuse (a usage error naming the variable) a provider at a real endpoint without a key of its own."""
    from vmops.errors import UsageError

    var = missing_key(config, name)
    if var:
        s = config.settings(name)
        raise UsageError(f"{name} points at {s.url} but no API key is configured for it",
                         hint=f"Set {var} (or {var}_FILE, or api_key_env / api_key_file in [{name}] of "
                              f"{config.config_path})")
