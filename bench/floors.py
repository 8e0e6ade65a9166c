"""The floors: what the providers themselves cost, measured with raw requests (no vmops code on the path).

* ``direct_fleet``: N direct creates (deletes) at each provider, as many in flight as the fleet sends, then
  one list per provider every ``TIGHT_POLL_S`` until all run (are gone). ``direct_create_delete`` is it for
  one VM per provider: the provider's own latency plus a few ms (figures 1, 2, 7, 9).
* ``RAW_LIST_SCRIPT``: a whole Python process that makes one raw list request per provider (stdlib
  http.client for REST, grpc + the generated stubs for Nebius): the least a Python client can do for `vm list`.

The REST calls use ``http.client`` with one kept-alive connection per thread; Nebius uses a plain grpc channel and the
stubs in ``vmops._gen`` (generated from the proto; no adapter code). Keys come from the configuration and
go only into request headers/metadata.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from vmops.config import Config

TIGHT_POLL_S = 0.01
DEADLINE_S = 60.0


class FloorError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    """Where one direct create goes: an h100:1 VM, the same shape the fleets use."""

    crusoe_location: str = "us-east1"
    lambda_region: str = "us-west-1"


class _Rest:
    def __init__(self, url: str, auth: str) -> None:
        u = urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port or 80, timeout=30)
        self.prefix = u.path.rstrip("/")
        self.headers = {"Authorization": auth, "Accept": "application/json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, self.prefix + path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        return resp.status, (json.loads(raw) if raw else None)

    def close(self) -> None:
        self.conn.close()


def _until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not check():
        if time.monotonic() > deadline:
            raise FloorError(f"floor: {what} did not happen within {DEADLINE_S:g}s")
        time.sleep(TIGHT_POLL_S)


def direct_create_delete(cfg: Config, providers: list[str], target: Target = Target()) -> dict[str, tuple[float, float]]:
    """{provider: (create-to-running s, delete-to-gone s)}, one direct VM per provider, all at once (each is
    ``direct_fleet`` of one VM)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(providers)) as pool:
        futs = {p: pool.submit(direct_fleet, cfg, {p: 1}, 1, target) for p in providers}
        return {p: f.result() for p, f in futs.items()}


# ---- the same N VMs, raw ---------------------------------------------------------------------------------
class _Raw:
    """One provider's raw calls for ``direct_fleet``: create one VM (its id), the states of every VM (one
    list), delete one VM. A connection per thread (``http.client`` is not thread-safe)."""

    def __init__(self, cfg: Config, provider: str, target: Target) -> None:
        self.provider, self.target = provider, target
        self.settings = cfg.settings(provider)
        self._local = threading.local()
        self._channels: list[Any] = []
        self._lock = threading.Lock()

    def _rest(self) -> _Rest:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._local.conn = _Rest(self.settings.url, f"Bearer {self.settings.api_key.reveal()}")
            with self._lock:
                self._channels.append(c)
        return c

    def _stub(self) -> Any:
        stub = getattr(self._local, "stub", None)
        if stub is None:
            import grpc

            from vmops._gen.nebius.compute.v1 import instance_service_pb2_grpc as svc_grpc

            channel = grpc.insecure_channel(self.settings.url)
            stub = self._local.stub = svc_grpc.InstanceServiceStub(channel)
            with self._lock:
                self._channels.append(channel)
        return stub

    def _api(self) -> str:
        """Lambda's path prefix, as ``_lambda`` finds it."""
        return "" if self._rest().prefix.endswith("/api/v1") else "/api/v1"

    def _md(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.settings.api_key.reveal()}"),)

    def create(self) -> str:
        name = f"floor-{uuid.uuid4().hex[:8]}"
        if self.provider == "crusoe":
            st, body = self._rest().call("POST", f"/v1alpha5/projects/{self.settings.scope}/compute/vms/instances",
                                         {"name": name, "type": "h100.1x", "location": self.target.crusoe_location,
                                          "ssh_key": "bench"})
            if st != 200:
                raise FloorError(f"floor: crusoe create answered HTTP {st}: {body}")
            return str(body["instance"]["id"])
        if self.provider == "lambda":
            st, body = self._rest().call("POST", f"{self._api()}/instance-operations/launch",
                                         {"region_name": self.target.lambda_region, "instance_type_name": "gpu_1x_h100",
                                          "ssh_key_names": ["bench"], "name": name, "quantity": 1})
            if st != 200:
                raise FloorError(f"floor: lambda launch answered HTTP {st}: {body}")
            return str(body["data"]["instance_ids"][0])
        from vmops._gen.nebius.compute.v1 import instance_pb2 as pb
        from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc

        req = svc.CreateInstanceRequest()
        req.metadata.parent_id = self.settings.scope or ""
        req.metadata.name = name
        req.spec.resources.platform = "gpu-h100-sxm"
        req.spec.resources.preset = "1gpu-16vcpu-200gb"
        req.spec.reservation_policy.policy = pb.FORBID
        return str(self._stub().Create(req, metadata=self._md(), timeout=30).resource_id)

    def running(self) -> dict[str, bool]:
        """{id: running} of every VM the provider lists (one list)."""
        if self.provider in ("crusoe", "lambda"):
            crusoe = self.provider == "crusoe"
            path = (f"/v1alpha5/projects/{self.settings.scope}/compute/vms/instances" if crusoe
                    else f"{self._api()}/instances")
            st, body = self._rest().call("GET", path)
            if st != 200:
                raise FloorError(f"floor: {self.provider} list answered HTTP {st}: {body}")
            if crusoe:
                return {vm["id"]: vm.get("state") == "STATE_RUNNING" for vm in body["items"]}
            return {vm["id"]: vm.get("status") == "active" for vm in body["data"]}
        from vmops._gen.nebius.compute.v1 import instance_pb2 as pb
        from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc

        resp = self._stub().List(svc.ListInstancesRequest(parent_id=self.settings.scope), metadata=self._md(),
                                 timeout=30)
        return {i.metadata.id: i.status.state == pb.RUNNING for i in resp.instances}

    def delete(self, iid: str) -> None:
        if self.provider == "crusoe":
            st, body = self._rest().call("DELETE", f"/v1alpha5/projects/{self.settings.scope}/compute/vms/instances/{iid}")
        elif self.provider == "lambda":
            st, body = self._rest().call("POST", f"{self._api()}/instance-operations/terminate",
                                         {"instance_ids": [iid]})
        else:
            from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc

            self._stub().Delete(svc.DeleteInstanceRequest(id=iid), metadata=self._md(), timeout=30)
            return
        if st != 200:
            raise FloorError(f"floor: {self.provider} delete answered HTTP {st}: {body}")

    def close(self) -> None:
        for c in self._channels:
            c.close()


def direct_fleet(cfg: Config, split: dict[str, int], in_flight: int,
                 target: Target = Target()) -> tuple[float, float]:
    """(all running s, all gone s) for ``split[provider]`` VMs at each provider at once, with raw requests:
    ``in_flight`` creates (deletes) outstanding per provider, as the fleet sends them, then one list per
    provider every ``TIGHT_POLL_S`` until every VM runs (is gone). The least any client pays for the same
    fleet on the same simulators: it includes their own time to take N requests, which one VM's floor does not."""
    from concurrent.futures import ThreadPoolExecutor

    raws = {p: _Raw(cfg, p, target) for p, n in split.items() if n}
    made: dict[str, list[str]] = {}

    def create_at(p: str) -> None:
        raw = raws[p]
        with ThreadPoolExecutor(in_flight) as pool:
            ids = list(pool.map(lambda _: raw.create(), range(split[p])))
        made[p] = ids
        _until(lambda: all(raw.running().get(i, False) for i in ids), f"{p} fleet create")

    def delete_at(p: str) -> None:
        raw, ids = raws[p], made[p]
        with ThreadPoolExecutor(in_flight) as pool:
            list(pool.map(raw.delete, ids))
        _until(lambda: not set(ids) & set(raw.running()), f"{p} fleet delete")

    try:
        with ThreadPoolExecutor(max(1, len(raws))) as pool:
            t0 = time.perf_counter()
            list(pool.map(create_at, list(raws)))
            create = time.perf_counter() - t0
            t0 = time.perf_counter()
            list(pool.map(delete_at, list(raws)))
            return create, time.perf_counter() - t0
    finally:
        for raw in raws.values():
            raw.close()


#: One process, one raw list per provider (what `vm list` must at least do). Reads its endpoints and keys
#: from the same environment variables as vm (through vmops.config, which is import-light).
RAW_LIST_SCRIPT = r"""
import http.client, json, os
from urllib.parse import urlsplit
import grpc
from vmops.config import load_config
from vmops._gen.nebius.compute.v1 import instance_service_pb2 as svc
from vmops._gen.nebius.compute.v1 import instance_service_pb2_grpc as svc_grpc
cfg = load_config(os.environ)
n = 0
for name, path in (("crusoe", "/v1alpha5/projects/{scope}/compute/vms/instances"), ("lambda", "/api/v1/instances")):
    s = cfg.settings(name)
    u = urlsplit(s.url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("GET", path.format(scope=s.scope), headers={"Authorization": "Bearer " + s.api_key.reveal()})
    r = c.getresponse()
    body = json.loads(r.read())
    assert r.status == 200, r.status
    n += len(body.get("items") or body.get("data") or [])
s = cfg.settings("nebius")
ch = grpc.insecure_channel(s.url)
resp = svc_grpc.InstanceServiceStub(ch).List(svc.ListInstancesRequest(parent_id=s.scope),
                                             metadata=(("authorization", "Bearer " + s.api_key.reveal()),), timeout=60)
n += len(resp.instances)
print(n)
"""

#: What any `vm` process must load before its first request, because the design card fixes it: click (the
#: CLI), httpx (REST), grpc and the generated Nebius stubs, in a fresh interpreter. httpx's own command line
#: is kept out, as vm keeps it out (vmops.cli.main.run). Added to the raw fleet floor, it is the floor of a
#: client process on these libraries (issue 15's reading (b); figures 1 and 2 report it without a target).
LIBRARIES_SCRIPT = r"""
import sys
sys.modules["httpx._main"] = None
import click, httpx, grpc
from vmops._gen.nebius.compute.v1 import instance_service_pb2_grpc
"""
