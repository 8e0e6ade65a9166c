"""Simulator of Lambda Cloud's real public API (../shared/cloud-apis.md §2, corrections in §6).

What it answers like the real service: ``{"data": …}`` envelopes and ``{"error": {code, message,
suggestion?}}`` errors (no ``detail``; validation is a 400 ``global/invalid-parameters``, not a 422); the key as
``Bearer <key>``, HTTP Basic ``base64("<key>:")`` or ``Basic <key>`` (§6.8); instances ``booting`` (no ``ip``)
for ``boot_s`` before ``active``, ``terminating`` after a terminate, then gone; one instance per launch
(``quantity`` > 1 is refused) with exactly one registered SSH key name; real type and region names;
``/instance-types`` with ``regions_with_capacity_available``; ``/ssh-keys``; and the documented rate limits:
at most one request per ``request_interval_s`` (with a burst of ``request_burst``) and one launch per
``launch_interval_s`` per API key, both scaled by the time scale, answered with HTTP 429 and a body that is
not Lambda JSON (``rate_limit_body``: ``html`` like Cloudflare's page, or ``json``).

Endpoint names (faults, counters; * = mutating)::

    list_instances, get_instance, rename_instance*, list_instance_types, list_ssh_keys, add_ssh_key*,
    launch*, terminate*, restart*

Fault kinds: ``error``, ``rate_limit``, ``latency``, ``lose_response`` (the launch/terminate is committed, then
the connection drops), ``malformed``, ``hang``; ``never_complete`` keeps a launched instance ``booting``
(drawn by ``vmops.sim.common.draw_faults``, as in every simulator).

Scenario section (``lambda:``), every key optional: ``keys`` (valid API keys), ``ssh_keys`` (registered key
names, default ``["vmops"]``), ``capacity`` ({region: {type: count}}), ``instances`` (list of ``{name, region,
instance_type, status?, count?}``), ``boot_s`` (3), ``terminate_s`` (1), ``request_interval_s`` (1.0; 0 = no
limit), ``request_burst`` (3), ``launch_interval_s`` (12.0; 0 = no limit), ``rate_limit_body`` (``html``).
"""

# No `from __future__ import annotations`: FastAPI resolves handler annotations at run time.

import base64
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Optional

from vmops.sim.common import Fault, SimOptions
from vmops.sim.rest import AnswerMiddleware, FaultResponse, RestSimulator, guard

VERSION = "/api/v1"
TEST_KEYS = ("lambda-cloud-test-key-001", "lambda-cloud-test-key-002")

# name, description, gpu_description, price_cents_per_hour, vcpus, memory_gib, storage_gib, gpus
TYPES: tuple[tuple[str, str, str, int, int, int, int, int], ...] = (
    ("gpu_1x_a10", "1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 75, 30, 200, 1400, 1),
    ("gpu_1x_a100_sxm4", "1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 129, 30, 200, 512, 1),
    ("gpu_8x_a100_80gb_sxm4", "8x A100 (80 GB SXM4)", "A100 (80 GB SXM4)", 1432, 240, 1800, 20480, 8),
    ("gpu_1x_h100_sxm5", "1x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 329, 26, 225, 2816, 1),
    ("gpu_8x_h100_sxm5", "8x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 2392, 208, 1800, 22528, 8),
)
REGIONS: dict[str, str] = {"us-east-1": "Virginia, USA", "us-west-1": "California, USA",
                           "us-south-1": "Texas, USA", "europe-central-1": "Germany"}
SEED_CAPACITY: dict[str, dict[str, int]] = {
    "us-east-1": {"gpu_1x_a10": 4, "gpu_1x_a100_sxm4": 3, "gpu_8x_a100_80gb_sxm4": 1, "gpu_1x_h100_sxm5": 4,
                  "gpu_8x_h100_sxm5": 1},
    "us-west-1": {"gpu_1x_a10": 2, "gpu_1x_a100_sxm4": 5, "gpu_8x_a100_80gb_sxm4": 2, "gpu_1x_h100_sxm5": 2,
                  "gpu_8x_h100_sxm5": 2},
    "us-south-1": {"gpu_1x_a100_sxm4": 0, "gpu_1x_h100_sxm5": 6},
    "europe-central-1": {"gpu_1x_a10": 1, "gpu_8x_h100_sxm5": 0},
}
SEED_INSTANCES: tuple[dict[str, Any], ...] = (
    {"name": "training-node-1", "region": "us-west-1", "instance_type": "gpu_8x_a100_80gb_sxm4"},
)
_SUGGEST = {"global/invalid-api-key": "Check your API key or create a new one, then try again."}
CLOUDFLARE_429 = (b"<!DOCTYPE html><html><head><title>Rate limited</title></head><body><h1>Error 1015</h1>"
                  b"<p>You are being rate limited.</p></body></html>")


class LambdaCloudError(Exception):
    def __init__(self, status: int, code: str, message: str, suggestion: Optional[str] = None) -> None:
        super().__init__(message)
        self.status = status
        self.error: dict[str, str] = {"code": code, "message": message}
        if suggestion or code in _SUGGEST:
            self.error["suggestion"] = suggestion or _SUGGEST[code]


def _invalid(message: str) -> LambdaCloudError:
    return LambdaCloudError(400, "global/invalid-parameters", message)


def _fault_body(fault: Fault, status: int) -> dict[str, Any]:
    code = "global/unknown" if status >= 500 else "global/invalid-parameters"
    return {"error": {"code": code, "message": fault.message or f"HTTP {status}"}}


@dataclass(eq=False)
class CloudInstance:
    id: str
    name: str
    region: str
    instance_type: str
    status: str
    ip: str
    private_ip: str
    ssh_key_names: list[str]
    tags: list[dict[str, str]] = field(default_factory=list)
    created: float = field(default_factory=time.time)


class _Limiter:
    """Per-key token buckets: requests (burst, one per interval) and launches (one per interval)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._last_launch: dict[str, float] = {}

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._last_launch.clear()

    def request(self, key: str, interval: float, burst: int) -> Optional[float]:
        """None when admitted, else the seconds until a token is free."""
        if interval <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            tokens, at = self._tokens.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) / interval)
            if tokens < 1.0:
                self._tokens[key] = (tokens, now)
                return (1.0 - tokens) * interval
            self._tokens[key] = (tokens - 1.0, now)
            return None

    def launch(self, key: str, interval: float) -> Optional[float]:
        if interval <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            last = self._last_launch.get(key)
            if last is not None and now - last < interval * 0.9:  # a little slack for client/server clock jitter
                return interval - (now - last)
            self._last_launch[key] = now
            return None


class LambdaCloudSim(RestSimulator):
    """Lambda Cloud's public API, in process. ``address`` is the base URL including ``/api/v1``."""

    name: ClassVar[str] = "lambda"
    default_port: ClassVar[int] = 8002
    dialect: ClassVar[str] = "cloud"
    ENDPOINTS: ClassVar[Mapping[str, bool]] = {
        "list_instances": False, "get_instance": False, "rename_instance": True, "list_instance_types": False,
        "list_ssh_keys": False, "add_ssh_key": True, "launch": True, "terminate": True, "restart": True,
    }

    def __init__(self, options: Optional[SimOptions] = None) -> None:
        self.limiter = _Limiter()
        super().__init__(options)
        self.app = self._build_app()

    def _knob(self, key: str, default: Any) -> Any:
        return (self.options.scenario or {}).get(key, default)

    def seed_state(self) -> None:
        with self.lock:
            self.limiter.reset()
            self.keys = set(self._knob("keys", TEST_KEYS))
            self.ssh_keys: dict[str, str] = {n: f"ssh-ed25519 AAAA{n}" for n in self._knob("ssh_keys", ["vmops"])}
            self.capacity: dict[tuple[str, str], int] = {}
            for region, row in (self._knob("capacity", None) or SEED_CAPACITY).items():
                for t, n in row.items():
                    self.capacity[(region, t)] = int(n)
            self.instances: dict[str, CloudInstance] = {}
            self.launched_at: list[float] = []
            self._n = 0
            for spec in self._knob("instances", SEED_INSTANCES):
                count = int(spec.get("count", 1))
                for i in range(count):
                    name = spec["name"] if count == 1 else f"{spec['name']}-{i}"
                    self._add(name, str(spec["region"]), str(spec["instance_type"]), ["vmops"],
                              str(spec.get("status", "active")))

    def _add(self, name: str, region: str, itype: str, keys: list[str], status: str) -> CloudInstance:
        self._n += 1
        n = self._n
        inst = CloudInstance(id=uuid.UUID(int=self.rng.getrandbits(128), version=4).hex, name=name, region=region,
                             instance_type=itype, status=status, ip=f"192.0.2.{n % 250 + 1}",
                             private_ip=f"10.19.{n // 250}.{n % 250 + 1}", ssh_key_names=keys)
        self.instances[inst.id] = inst
        return inst

    # ------------------------------------------------------------------ wire shapes
    @staticmethod
    def type_wire(name: str) -> dict[str, Any]:
        t = next(x for x in TYPES if x[0] == name)
        return {"name": t[0], "description": t[1], "gpu_description": t[2], "price_cents_per_hour": t[3],
                "specs": {"vcpus": t[4], "memory_gib": t[5], "storage_gib": t[6], "gpus": t[7]}}

    def instance_wire(self, inst: CloudInstance) -> dict[str, Any]:
        live = inst.status == "active"
        ending = inst.status == "terminating"
        out: dict[str, Any] = {
            "id": inst.id, "name": inst.name, "status": inst.status, "ssh_key_names": list(inst.ssh_key_names),
            "file_system_names": [], "region": {"name": inst.region, "description": REGIONS.get(inst.region, "")},
            "instance_type": self.type_wire(inst.instance_type), "hostname": f"{inst.ip.replace('.', '-')}",
            "actions": {**{a: ({"available": True} if live else
                               {"available": False, "reason_code": "vm-is-terminating" if ending else
                                "vm-has-not-launched", "reason_description": "Not available in this state."})
                           for a in ("migrate", "rebuild", "restart", "cold_reboot")},
                        "terminate": {"available": True} if not ending else
                        {"available": False, "reason_code": "vm-is-terminating",
                         "reason_description": "The instance is terminating."}},
            "tags": [dict(t) for t in inst.tags],
        }
        if inst.status != "booting":  # absent until the instance has them (§6.10)
            out["ip"], out["private_ip"] = inst.ip, inst.private_ip
        return out

    # ------------------------------------------------------------------ auth and limits
    def authenticate(self, header: str) -> str:
        scheme, _, value = header.partition(" ")
        key = ""
        if scheme == "Bearer":
            key = value
        elif scheme == "Basic":
            try:
                decoded = base64.b64decode(value, validate=True).decode()
                key = decoded[:-1] if decoded.endswith(":") else decoded.split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
            if key not in self.keys:
                key = value  # §6.8: the raw key as the Basic credential
        if key not in self.keys:
            raise LambdaCloudError(401, "global/invalid-api-key", "API key was invalid, expired, or deleted.")
        return key

    def _too_many(self, wait_s: float) -> FaultResponse:
        import math

        headers = {"Retry-After": str(max(1, math.ceil(wait_s)))}
        if self._knob("rate_limit_body", "html") == "json":
            return FaultResponse(429, {"error": {"code": "global/rate-limited", "message": "Too many requests"}},
                                 headers)
        return FaultResponse(429, None, {**headers, "content-type": "text/html"})

    def check_limits(self, key: str, endpoint: str) -> None:
        scale = self.time_scale
        wait = self.limiter.request(key, float(self._knob("request_interval_s", 1.0)) * scale,
                                    int(self._knob("request_burst", 3)))
        if wait is None and endpoint == "launch":
            wait = self.limiter.launch(key, float(self._knob("launch_interval_s", 12.0)) * scale)
        if wait is not None:
            self.requests.record(endpoint, False, "rate_limited")
            raise self._too_many(wait)

    # ------------------------------------------------------------------ endpoint logic
    def _get(self, iid: str) -> CloudInstance:
        inst = self.instances.get(iid)
        if inst is None:
            raise LambdaCloudError(404, "global/object-does-not-exist", "Specified instance does not exist.")
        return inst

    def launch(self, body: Mapping[str, Any], effects: Any) -> dict[str, Any]:
        for k in ("region_name", "instance_type_name", "ssh_key_names"):
            if k not in body:
                raise _invalid(f"{k}: Field required")
        if "quantity" in body and body["quantity"] != 1:
            raise _invalid("Requested too many instances")
        keys = body["ssh_key_names"]
        if not isinstance(keys, list) or len(keys) != 1:
            raise _invalid("ssh_key_names: exactly one SSH key name is required")
        name = body.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 64):
            raise _invalid("name: at most 64 characters")
        region, itype = str(body["region_name"]), str(body["instance_type_name"])
        with self.lock:
            if itype not in {t[0] for t in TYPES}:
                raise _invalid(f"Unknown instance type {itype}")
            if region not in REGIONS:
                raise _invalid(f"Unknown region {region}")
            if keys[0] not in self.ssh_keys:
                raise LambdaCloudError(404, "global/object-does-not-exist", f"SSH key {keys[0]} does not exist.")
            if self.capacity.get((region, itype), 0) < 1:
                raise LambdaCloudError(400, "instance-operations/launch/insufficient-capacity",
                                       "Not enough capacity to fulfill launch request.")
            self.capacity[(region, itype)] -= 1
            self.launched_at.append(time.monotonic())
            inst = self._add(name or "", region, itype, list(keys), "booting")
            tags = body.get("tags") or []
            inst.tags = [{"key": str(t.get("key")), "value": str(t.get("value", ""))} for t in tags
                         if isinstance(t, dict)]
        if not effects.never_complete:
            self.scheduler.call_later(float(self._knob("boot_s", 3.0)), lambda: self._set(inst, "active", "booting"))
        return {"data": {"instance_ids": [inst.id]}}

    def _set(self, inst: CloudInstance, status: str, only_from: str) -> None:
        with self.lock:
            if inst.id in self.instances and inst.status == only_from:
                inst.status = status

    def terminate(self, ids: list[str]) -> dict[str, Any]:
        with self.lock:
            found = [self._get(i) for i in ids]  # all or nothing: unknown ids fail the call first
            out = []
            for inst in found:
                if inst.status != "terminating":
                    inst.status = "terminating"
                    self.scheduler.call_later(float(self._knob("terminate_s", 1.0)), lambda i=inst: self._remove(i))
                out.append(self.instance_wire(inst))
            return {"data": {"terminated_instances": out}}

    def _remove(self, inst: CloudInstance) -> None:
        with self.lock:
            if self.instances.pop(inst.id, None) is not None:
                key = (inst.region, inst.instance_type)
                self.capacity[key] = self.capacity.get(key, 0) + 1

    def restart(self, ids: list[str]) -> dict[str, Any]:
        with self.lock:
            found = [self._get(i) for i in ids]
            for inst in found:
                if inst.status != "active":
                    raise _invalid(f"Instance {inst.id} cannot be restarted while {inst.status}.")
                inst.status = "booting"
                self.scheduler.call_later(float(self._knob("boot_s", 3.0)) / 3, lambda i=inst: self._set(i, "active",
                                                                                                          "booting"))
            return {"data": {"restarted_instances": [self.instance_wire(i) for i in found]}}

    def instance_types(self) -> dict[str, Any]:
        with self.lock:
            return {"data": {t[0]: {"instance_type": self.type_wire(t[0]),
                                    "regions_with_capacity_available": [
                                        {"name": r, "description": d} for r, d in REGIONS.items()
                                        if self.capacity.get((r, t[0]), 0) > 0]} for t in TYPES}}

    # ------------------------------------------------------------------ server
    def _build_app(self) -> Any:
        from fastapi import Body, FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse, Response

        sim = self
        app = FastAPI(title="Lambda Cloud API (simulated)", docs_url=None, redoc_url=None, openapi_url=None)
        app.add_middleware(AnswerMiddleware, sim=sim, enum_fields=("status",))

        @app.exception_handler(LambdaCloudError)
        def _err(request: Request, exc: LambdaCloudError) -> JSONResponse:
            return JSONResponse({"error": exc.error}, status_code=exc.status)

        @app.exception_handler(FaultResponse)
        def _fault(request: Request, exc: FaultResponse) -> Response:
            if exc.body is None:
                return Response(CLOUDFLARE_429, status_code=exc.status, headers=exc.headers, media_type="text/html")
            return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

        @app.exception_handler(RequestValidationError)
        def _invalid_req(request: Request, exc: RequestValidationError) -> JSONResponse:
            return JSONResponse({"error": {"code": "global/invalid-parameters", "message": "Invalid request."}},
                                status_code=400)

        @app.exception_handler(404)
        def _nothing(request: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"error": {"code": "global/object-does-not-exist", "message": "Not found."}},
                                status_code=404)

        def enter(endpoint: str, request: Request) -> Any:
            def admit() -> None:
                sim.check_limits(sim.authenticate(request.headers.get("authorization", "")), endpoint)

            return guard(sim, endpoint, request.scope, _fault_body, admit)

        def body_of(body: Any) -> dict[str, Any]:
            if not isinstance(body, dict):
                raise _invalid("The request body must be an object.")
            return body

        def ids_of(body: Mapping[str, Any]) -> list[str]:
            ids = body.get("instance_ids")
            if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
                raise _invalid("instance_ids: a non-empty list of ids is required")
            return ids

        v = VERSION

        @app.get(v + "/instances")
        def list_instances(request: Request) -> JSONResponse:
            enter("list_instances", request)
            with sim.lock:
                return JSONResponse({"data": [sim.instance_wire(i) for i in sim.instances.values()]})

        @app.get(v + "/instances/{iid}")
        def get_instance(iid: str, request: Request) -> JSONResponse:
            enter("get_instance", request)
            with sim.lock:
                return JSONResponse({"data": sim.instance_wire(sim._get(iid))})

        @app.post(v + "/instances/{iid}")
        def rename_instance(iid: str, request: Request, body: Any = Body(None)) -> JSONResponse:
            enter("rename_instance", request)
            body = body_of(body)
            name = body.get("name")
            if not isinstance(name, str) or len(name) > 64:
                raise _invalid("name: a string of at most 64 characters is required")
            with sim.lock:
                inst = sim._get(iid)
                inst.name = name
                return JSONResponse({"data": sim.instance_wire(inst)})

        @app.get(v + "/instance-types")
        def list_instance_types(request: Request) -> JSONResponse:
            enter("list_instance_types", request)
            return JSONResponse(sim.instance_types())

        @app.get(v + "/ssh-keys")
        def list_ssh_keys(request: Request) -> JSONResponse:
            enter("list_ssh_keys", request)
            with sim.lock:
                return JSONResponse({"data": [{"id": f"key-{n}", "name": n, "public_key": k}
                                              for n, k in sim.ssh_keys.items()]})

        @app.post(v + "/ssh-keys")
        def add_ssh_key(request: Request, body: Any = Body(None)) -> JSONResponse:
            enter("add_ssh_key", request)
            body = body_of(body)
            name = body.get("name")
            if not isinstance(name, str) or not name:
                raise _invalid("name: required")
            with sim.lock:
                sim.ssh_keys[name] = str(body.get("public_key") or "")
            return JSONResponse({"data": {"id": f"key-{name}", "name": name, "public_key": sim.ssh_keys[name]}})

        @app.post(v + "/instance-operations/launch")
        def launch(request: Request, body: Any = Body(None)) -> JSONResponse:
            effects = enter("launch", request)
            return JSONResponse(sim.launch(body_of(body), effects))

        @app.post(v + "/instance-operations/terminate")
        def terminate(request: Request, body: Any = Body(None)) -> JSONResponse:
            enter("terminate", request)
            return JSONResponse(sim.terminate(ids_of(body_of(body))))

        @app.post(v + "/instance-operations/restart")
        def restart(request: Request, body: Any = Body(None)) -> JSONResponse:
            enter("restart", request)
            return JSONResponse(sim.restart(ids_of(body_of(body))))

        return app

    # ------------------------------------------------------------------ helpers for tests and tools
    def instance_names(self) -> list[str]:
        with self.lock:
            return [i.name for i in self.instances.values()]

    def launch_times(self) -> list[float]:
        """Monotonic times of every admitted launch (for pacing checks)."""
        with self.lock:
            return list(self.launched_at)

    def client_env(self) -> dict[str, str]:
        """Dialect, URL, a test key and the pacing that keeps a client under this simulator's scaled limits."""
        scale = self.time_scale
        return {"VMOPS_LAMBDA_DIALECT": "cloud", "VMOPS_LAMBDA_URL": self.address,
                "VMOPS_LAMBDA_API_KEY": sorted(self.keys)[0],
                "VMOPS_LAMBDA_REQUEST_INTERVAL": f"{float(self._knob('request_interval_s', 1.0)) * scale:g}",
                "VMOPS_LAMBDA_LAUNCH_INTERVAL": f"{float(self._knob('launch_interval_s', 12.0)) * scale:g}"}

    @property
    def address(self) -> str:
        if self.port is None:
            raise RuntimeError("lambda cloud simulator is not started")
        return f"{self.scheme}://127.0.0.1:{self.port}{VERSION}"
