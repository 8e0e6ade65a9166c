"""Crusoe signature v1.0 against the worked vectors of ../shared/cloud-apis.md §1.2."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import httpx
import pytest

from vmops.providers.crusoe_sign import (
    CrusoeSigner,
    SignatureError,
    canonical_query,
    string_to_sign,
    utc_timestamp,
    verify,
)

KEY_ID = "vmopsTestAccessKey01"
SECRET = "AAECAwQFBgcICQoLDA0ODw"
TS = "2026-08-01T12:00:00Z"
BASE = "https://api.cloud.crusoe.ai"
PROJ = "/v1alpha5/projects/11111111-2222-3333-4444-555555555555/compute/vms/instances"
VECTORS = [
    ("GET", PROJ + "?states=STATE_RUNNING&limit=2&names=vmops%20a%2Cb",
     "0e7bd1811c3812c070bb7539e654c0351c7d41894377295e27e32dcc2b235e74",
     "hckfK8uoEfPkN0kLCgDDKRs0iVtrUa2rEtbYN6NjyDY"),
    ("POST", PROJ, "839f70e1eabba52f59ec710ecfb8f2c5341e0584c4ca4755f9f95b0cad9d4713",
     "pJ_rKzllI2ziSQ_zy0_21q0pL6JiP-B-6N_oeWzJd9c"),
    ("GET", "/v1alpha5/capacities?product_name=h100-80gb-sxm-ib.8x&location=us-east1-a",
     "7a9934f189a970c79a8a9d51dd15ca903e144f827df8d5e1dbeb21ea71fec6d3",
     "zzt_ilp-YnesPL8GIonrY2UGecaE5rwEJtRKeGOja18"),
]


def _signed(method: str, target: str) -> httpx.Request:
    signer = CrusoeSigner(KEY_ID, SECRET, clock=lambda: datetime(2026, 8, 1, 12, 0, 0, tzinfo=timezone.utc))
    return next(signer.auth_flow(httpx.Request(method, BASE + target, json={} if method == "POST" else None)))


@pytest.mark.parametrize("method,target,sha,sig", VECTORS)
def test_worked_vectors(method: str, target: str, sha: str, sig: str) -> None:
    req = _signed(method, target)
    path, _, query = target.partition("?")
    assert hashlib.sha256(string_to_sign(path, query, method, TS).encode()).hexdigest() == sha
    assert req.headers["X-Crusoe-Timestamp"] == TS
    assert req.headers["Authorization"] == f"Bearer 1.0:{KEY_ID}:{sig}"
    assert verify(req.headers["Authorization"], TS, path, query, method, {KEY_ID: SECRET}.get) == KEY_ID


def test_query_from_httpx_params_signs_like_the_vector() -> None:
    signer = CrusoeSigner(KEY_ID, SECRET, clock=lambda: datetime(2026, 8, 1, 12, tzinfo=timezone.utc))
    req = next(signer.auth_flow(httpx.Request("GET", BASE + PROJ, params={"states": "STATE_RUNNING", "limit": "2",
                                                                           "names": "vmops a,b"})))
    assert req.headers["Authorization"].endswith(":" + VECTORS[0][3])


def test_canonical_query_edge_cases() -> None:
    assert canonical_query("") == ""
    assert canonical_query("b=2&&a=1&b=1") == "a=1&b=2&b=1"  # empty parts skipped, values keep their order
    assert canonical_query("k=a+b&j=%7E~*") == "j=~~%2A&k=a+b"
    assert canonical_query("flag") == "flag="
    with pytest.raises(SignatureError):
        canonical_query("a=1;b=2")


def test_verify_rejects_wrong_secret_method_path_and_format() -> None:
    req = _signed("GET", "/v1alpha5/capacities")
    header = req.headers["Authorization"]
    good = {KEY_ID: SECRET}.get
    assert verify(header, TS, "/v1alpha5/capacities", "", "GET", good) == KEY_ID
    assert verify(header, TS, "/v1alpha5/capacities", "", "POST", good) is None
    assert verify(header, TS, "/v1alpha5/locations", "", "GET", good) is None
    assert verify(header, "2026-08-01T12:00:01Z", "/v1alpha5/capacities", "", "GET", good) is None
    assert verify(header, TS, "/v1alpha5/capacities", "", "GET", {KEY_ID: "AAAA"}.get) is None
    assert verify("Bearer plain-key", TS, "/v1alpha5/capacities", "", "GET", good) is None
    assert utc_timestamp(datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=timezone.utc)) == "2026-01-02T03:04:05Z"
