"""The catalogue: which providers exist, which native VM type each offers for a canonical GPU shape,
their sizes and list prices, and the region names and aliases.

This is data, not logic. Adding a provider means one ``ProviderEntry`` here (naming its adapter class per
dialect) plus the adapter module.

Dialects: every provider is spoken in one of two dialects, ``reference`` (the reference test servers,
../shared/provider-apis.md) and ``cloud`` (the provider's real public API, ../shared/cloud-apis.md). The entry
names one adapter per dialect (``adapters``); ``vmops.config`` picks the dialect (``VMOPS_<P>_DIALECT``, else
``cloud`` for a URL on one of ``public_hosts``, else ``reference``) and ``vmops.providers.get_provider`` the
adapter. Nothing above the adapters looks at the dialect.

Prices here are *list prices* used where a provider's API reports none (Nebius, Crusoe cloud) or before we have
asked the API; adapters prefer the API's own price where it has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from vmops.model import GpuShape


@dataclass(frozen=True)
class NativeType:
    """One provider's VM type for one canonical shape."""

    name: str  # native type key: "h100.8x", "gpu_8x_h100", "gpu-h100-sxm/8gpu-160vcpu-1600gb"
    shape: GpuShape
    vcpus: int
    memory_gib: int
    list_price_per_hour: float  # USD per VM-hour
    price_source: str


DIALECTS: tuple[str, ...] = ("reference", "cloud")


@dataclass(frozen=True)
class ProviderEntry:
    """A provider as vmops knows it without asking it anything."""

    name: str
    adapters: Mapping[str, str]  # dialect -> "module:Class", imported lazily
    title: str
    types: tuple[NativeType, ...]
    regions: tuple[str, ...] = ()  # native region names, in the provider's order; () = no regions
    region_aliases: Mapping[str, str] = field(default_factory=dict)  # short alias -> native name
    # Configuration: environment variables are VMOPS_<NAME>_<suffix>
    url_var: str = "URL"
    scope_var: str | None = "PROJECT"
    default_url: str = ""
    default_api_key: str = ""
    default_scope: str | None = None
    # The cloud dialect (../shared/cloud-apis.md): hosts of the public API (a URL on one of them defaults
    # the dialect to "cloud"), the real API's type names known in advance (an adapter also maps names it
    # reads from the API by their GPU model and count) and its region names.
    public_hosts: tuple[str, ...] = ()
    cloud_types: tuple[NativeType, ...] = ()
    cloud_regions: tuple[str, ...] = ()
    # Credentials of the cloud dialect: env suffixes read (in order) before ``API_KEY`` for the secret,
    # the env suffix of a non-secret key id, and a provider CLI profile file (TOML, ``[default]``).
    cloud_secret_vars: tuple[str, ...] = ()
    cloud_key_id_var: str | None = None
    cloud_profile: str | None = None
    # Client-side pacing of the cloud dialect (seconds between requests / between launches, instances per
    # launch); overridable with VMOPS_<P>_REQUEST_INTERVAL / _LAUNCH_INTERVAL (tests, simulators).
    cloud_request_interval: float = 0.0
    cloud_launch_interval: float = 0.0
    cloud_max_per_launch: int = 0  # 0 = no limit
    # Ids one terminate call may carry where the API takes a list (Lambda), per dialect; 1 = one id per call.
    # Overridable with VMOPS_<P>_TERMINATE_BATCH or ``terminate_batch`` in the provider's config section.
    max_per_terminate: int = 1
    cloud_max_per_terminate: int = 1

    @property
    def adapter(self) -> str:
        """The reference dialect's adapter ("module:Class")."""
        return self.adapters["reference"]

    def terminate_batch(self, dialect: str) -> int:
        """How many ids one terminate call carries by default in ``dialect``."""
        return self.cloud_max_per_terminate if dialect == "cloud" else self.max_per_terminate

    def adapter_for(self, dialect: str) -> str:
        try:
            return self.adapters[dialect]
        except KeyError:
            raise ValueError(f"{self.name} has no {dialect!r} dialect; known: {', '.join(self.adapters)}") from None

    def default_dialect(self, host: str) -> str:
        """``cloud`` for the provider's public host, ``reference`` for anything else (simulators, test servers)."""
        return "cloud" if host.lower() in self.public_hosts and "cloud" in self.adapters else "reference"

    def all_types(self) -> tuple[NativeType, ...]:
        return self.types + self.cloud_types
    # How long each operation typically takes, in seconds from the mutation's answer (verb -> seconds;
    # "operation" = an operation object's completion). Waits make their first poll then (design.md, "Polling").
    typical: Mapping[str, float] = field(default_factory=dict)
    # The same for the real API where it differs (the planner's expected time to running; waits keep polling from
    # ``typical``); a verb missing here falls back to ``typical``.
    cloud_typical: Mapping[str, float] = field(default_factory=dict)

    def typical_seconds(self, verb: str | None, dialect: str = "reference") -> float:
        """The typical duration of ``verb`` here in ``dialect``; 0 (poll at once) when unknown."""
        if not verb:
            return 0.0
        table = self.cloud_typical if dialect == "cloud" and verb in self.cloud_typical else self.typical
        return float(table.get(verb, 0.0))

    def type_for(self, shape: GpuShape) -> NativeType | None:
        """The type for ``shape``: the reference dialect's first, else the cloud dialect's (a cloud adapter maps
        either to a product its API lists)."""
        for t in self.all_types():
            if t.shape == shape:
                return t
        return None

    def type_named(self, native: str) -> NativeType | None:
        """The type called ``native`` in either dialect."""
        for t in self.all_types():
            if t.name == native:
                return t
        return None

    def shapes(self) -> list[GpuShape]:
        return list(dict.fromkeys(t.shape for t in self.all_types()))

    def resolve_region(self, region: str | None) -> str | None:
        """Native region name for a native name or an alias; None if not given. Raises ValueError if unknown."""
        if region is None or region == "":
            return None
        if not self.regions:
            raise ValueError(f"{self.name} has no regions (it is scoped by project); omit --region")
        if region in self.regions or region in self.cloud_regions:
            return region
        key = region.lower()
        if key in self.region_aliases:
            return self.region_aliases[key]
        known = ", ".join(list(self.regions) + sorted(self.region_aliases))
        raise ValueError(f"unknown region {region!r} for {self.name}; known: {known}")


_CRUSOE_SRC = "crusoe vm-types API list price (catalogue copy, 2026-03)"
_LAMBDA_SRC = "lambda instance-types API list price (catalogue copy, 2026-03)"
# Nebius' API carries no prices. Published on-demand list prices per GPU-hour for H100 and H200
# (nebius.com/prices), as recorded by vmops on 2026-11-01; verify before budgeting.
_NEBIUS_SRC = "nebius published list price per GPU-hour, recorded 2026-11-01"
# Crusoe's API carries no prices (cloud-apis.md §1.3): per-GPU-hour list prices from crusoe.ai/cloud/pricing
# as gpuhunt records them (H100-SXM-80GB 3.90, A100-SXM-80GB 1.95, L40S-48GB 1.00).
_CRUSOE_CLOUD_SRC = "crusoe published list price per GPU-hour (via gpuhunt, 2026-08)"
# Lambda's API carries its prices (price_cents_per_hour), which the cloud adapter prefers; these are estimates
# for planning before the API was asked.
_LAMBDA_CLOUD_SRC = "vmops estimate (the cloud API's price_cents_per_hour is used when known)"
_NEBIUS_H100_GPU_HOUR = 2.95
_NEBIUS_H200_GPU_HOUR = 3.50

CRUSOE = ProviderEntry(
    name="crusoe",
    adapters={"reference": "vmops.providers.crusoe:CrusoeProvider",
              "cloud": "vmops.providers.crusoe_cloud:CrusoeCloudProvider"},
    title="Crusoe Cloud",
    types=(
        NativeType("a100.1x", GpuShape("a100", 1), 12, 85, 1.48, _CRUSOE_SRC),
        NativeType("a100.8x", GpuShape("a100", 8), 96, 680, 11.84, _CRUSOE_SRC),
        NativeType("h100.1x", GpuShape("h100", 1), 16, 128, 3.46, _CRUSOE_SRC),
        NativeType("h100.8x", GpuShape("h100", 8), 192, 1440, 27.68, _CRUSOE_SRC),
    ),
    regions=("us-east1", "us-west1", "eu-west1"),
    region_aliases={"us-east": "us-east1", "us-west": "us-west1", "eu-west": "eu-west1"},
    url_var="URL",
    scope_var="PROJECT",
    default_url="http://127.0.0.1:8001",
    default_api_key="crusoe-test-key-001",
    default_scope="proj-001",
    public_hosts=("api.cloud.crusoe.ai", "api.crusoecloud.com"),
    cloud_types=(
        NativeType("a100-80gb.1x", GpuShape("a100", 1), 12, 120, 1.95, _CRUSOE_CLOUD_SRC),
        NativeType("a100-80gb.8x", GpuShape("a100", 8), 96, 960, 15.60, _CRUSOE_CLOUD_SRC),
        NativeType("h100-80gb-sxm-ib.8x", GpuShape("h100", 8), 176, 960, 31.20, _CRUSOE_CLOUD_SRC),
        NativeType("l40s-48gb.1x", GpuShape("l40s", 1), 8, 147, 1.00, _CRUSOE_CLOUD_SRC),
    ),
    cloud_regions=("us-east1-a", "us-northcentral1-a", "us-southcentral1-a", "eu-iceland1-a"),
    cloud_secret_vars=("SECRET_KEY",),
    cloud_key_id_var="ACCESS_KEY_ID",
    cloud_profile="~/.crusoe/config",
    # ../shared/provider-apis.md section 1.4: every operation SUCCEEDED at +2 s; create RUNNING at +2.5 s,
    # restart at +3 s; stop, start and delete at +2 s
    typical={"operation": 2.0, "create": 2.5, "start": 2.0, "stop": 2.0, "restart": 3.0, "reboot": 2.0,
             "reset": 2.0, "destroy": 2.0},
    cloud_typical={"create": 180.0},  # cloud-apis.md §4.1 row 27: "minutes" (unconfirmed); an estimate
)

LAMBDA = ProviderEntry(
    name="lambda",
    adapters={"reference": "vmops.providers.lambdalabs:LambdaProvider",
              "cloud": "vmops.providers.lambda_cloud:LambdaCloudProvider"},
    title="Lambda Cloud",
    types=(
        NativeType("gpu_1x_a100", GpuShape("a100", 1), 16, 225, 1.48, _LAMBDA_SRC),
        NativeType("gpu_8x_a100", GpuShape("a100", 8), 124, 1800, 11.84, _LAMBDA_SRC),
        NativeType("gpu_1x_h100", GpuShape("h100", 1), 26, 225, 3.46, _LAMBDA_SRC),
        NativeType("gpu_8x_h100", GpuShape("h100", 8), 208, 1800, 27.68, _LAMBDA_SRC),
    ),
    regions=("us-west-1", "us-east-1", "eu-west-1"),
    region_aliases={"us-west": "us-west-1", "us-east": "us-east-1", "eu-west": "eu-west-1"},
    url_var="URL",
    scope_var=None,
    default_url="http://127.0.0.1:8002",
    default_api_key="lambda-test-key-001",
    public_hosts=("cloud.lambda.ai", "cloud.lambdalabs.com"),
    cloud_types=(
        NativeType("gpu_1x_a100_sxm4", GpuShape("a100", 1), 30, 200, 1.29, _LAMBDA_CLOUD_SRC),
        NativeType("gpu_8x_a100_80gb_sxm4", GpuShape("a100", 8), 240, 1800, 14.32, _LAMBDA_CLOUD_SRC),
        NativeType("gpu_1x_h100_sxm5", GpuShape("h100", 1), 26, 225, 3.29, _LAMBDA_CLOUD_SRC),
        NativeType("gpu_8x_h100_sxm5", GpuShape("h100", 8), 208, 1800, 23.92, _LAMBDA_CLOUD_SRC),
        NativeType("gpu_1x_a10", GpuShape("a10", 1), 30, 200, 0.75, _LAMBDA_CLOUD_SRC),
    ),
    cloud_regions=("us-east-1", "us-east-2", "us-east-3", "us-west-1", "us-west-2", "us-west-3", "us-south-1",
                   "us-south-2", "us-south-3", "us-midwest-1", "us-midwest-2", "europe-central-1", "asia-south-1",
                   "asia-northeast-1", "asia-northeast-2", "australia-east-1", "me-west-1"),
    cloud_request_interval=1.0,  # cloud-apis.md §2.5: about one request per second per account
    cloud_launch_interval=12.0,  # one launch per 12 s (spec 1.8.3; older docs: 10 s)
    cloud_max_per_launch=1,
    # provider-apis.md §2.3.4/§2.7: a terminate takes a list, in order, without rollback; a fleet manager
    # "should terminate one id per call, or pre-filter out reserved ids" (the adapter pre-filters, and sends
    # any id of a batch that errored alone). cloud-apis.md: the public API's partial-failure semantics are
    # unconfirmed and it advises one id per call, so the cloud dialect keeps that unless configured.
    max_per_terminate=50,
    cloud_max_per_terminate=1,
    # ../shared/provider-apis.md section 2: everything is synchronous (active at launch, gone at terminate)
    typical={"create": 0.0, "restart": 0.0, "destroy": 0.0},
    cloud_typical={"create": 300.0},  # cloud-apis.md §2.3: booting 3-5 min (single GPU) to 10-15 min (multi-GPU)
)

NEBIUS = ProviderEntry(
    name="nebius",
    adapters={"reference": "vmops.providers.nebius:NebiusProvider",
              "cloud": "vmops.providers.nebius_cloud:NebiusCloudProvider"},
    title="Nebius AI Cloud",
    types=(
        NativeType("gpu-h100-sxm/1gpu-16vcpu-200gb", GpuShape("h100", 1), 16, 200,
                   _NEBIUS_H100_GPU_HOUR, _NEBIUS_SRC),
        NativeType("gpu-h100-sxm/8gpu-160vcpu-1600gb", GpuShape("h100", 8), 160, 1600,
                   round(8 * _NEBIUS_H100_GPU_HOUR, 2), _NEBIUS_SRC),
        NativeType("gpu-h200-sxm/1gpu-20vcpu-256gb", GpuShape("h200", 1), 20, 256,
                   _NEBIUS_H200_GPU_HOUR, _NEBIUS_SRC),
        NativeType("gpu-h200-sxm/8gpu-160vcpu-2048gb", GpuShape("h200", 8), 160, 2048,
                   round(8 * _NEBIUS_H200_GPU_HOUR, 2), _NEBIUS_SRC),
    ),
    regions=(),
    url_var="ENDPOINT",
    scope_var="PARENT",
    default_url="127.0.0.1:50051",
    default_api_key="nebius-test-key-001",
    default_scope="project-e1a2b3c4",
    public_hosts=("compute.api.nebius.cloud",),
    cloud_secret_vars=("IAM_TOKEN",),  # the static IAM token is the credential `vm config show`/doctor report
    # ../shared/provider-apis.md section 3.6: create RUNNING at +3 s; stop, start and delete at +2 s
    typical={"create": 3.0, "start": 2.0, "stop": 2.0, "destroy": 2.0},
    # cloud-apis.md §4.3 row 29: "tens of seconds to minutes"; an estimate. An operation (a boot disk, an
    # instance accepted): no published figure; an estimate, so that its first poll is not at once
    cloud_typical={"create": 120.0, "operation": 1.0},
)

PROVIDERS: dict[str, ProviderEntry] = {p.name: p for p in (CRUSOE, LAMBDA, NEBIUS)}


def provider_entry(name: str) -> ProviderEntry:
    try:
        return PROVIDERS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}") from None


def all_shapes() -> list[GpuShape]:
    return sorted({t.shape for p in PROVIDERS.values() for t in p.types})


def resolve_type(provider: str, gpu: str) -> NativeType:
    """The native type a provider uses for ``gpu`` (a canonical shape or that provider's native name).

    Raises ValueError naming the shapes the provider offers; never touches the network.
    """
    entry = provider_entry(provider)
    native = entry.type_named(gpu.strip())
    if native:
        return native
    try:
        shape = GpuShape.parse(gpu)
    except ValueError:
        shape = None
    if shape is not None:
        native = entry.type_for(shape)
        if native:
            return native
    offered = ", ".join(str(s) for s in entry.shapes())
    raise ValueError(f"{provider} does not offer {gpu!r}; it offers {offered} (or its native names: "
                     f"{', '.join(t.name for t in entry.types)})")


def providers_offering(shape: GpuShape) -> list[ProviderEntry]:
    return [p for p in PROVIDERS.values() if p.type_for(shape) is not None]
