"""TLS end to end: the three simulators serve https / gRPC over TLS with a certificate from a CA made in
the test; `vm list` works against all three when vmops is given that CA (VMOPS_CA_BUNDLE or per provider),
and fails with a typed error and a hint about the CA bundle when it is not. Plaintext to a host other than
loopback is warned about (decided from the configuration alone: nothing is sent to that host)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.cli.helpers import vm
from tests.conftest import POLL, TEST_SCALE
from tests.reliability.summary import record
from vmops.config import Secret, load_config, plaintext_remote
from vmops.errors import ProviderUnavailable
from vmops.model import CreateRequest, State
from vmops.providers.base import Timing
from vmops.session import Session
from vmops.sim.common import SimOptions
from vmops.sim.crusoe import CrusoeSim
from vmops.sim.lambdalabs import LambdaSim
from vmops.sim.nebius import NebiusSim

FAST = Timing(poll_interval=POLL, op_timeout=30, retry_attempts=3, retry_base_delay=0.01, retry_max_delay=0.05,
              request_timeout=5.0)


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA certificate (what a client trusts)
    cert: Path  # server certificate for 127.0.0.1 / localhost, signed by the CA
    key: Path  # its private key
    other_ca: Path  # an unrelated CA (trusting it must not be enough)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("vmops test CA")
    _, other = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = Pki(ca=d / "ca.pem", cert=d / "server.pem", key=d / "server.key", other_ca=d / "other-ca.pem")
    pki.ca.write_bytes(_pem(ca_cert))
    pki.other_ca.write_bytes(_pem(other))
    pki.cert.write_bytes(_pem(cert))
    pki.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    pki.key.chmod(0o600)
    return pki


@pytest.fixture(scope="module")
def tls_sims(pki) -> Iterator[dict[str, object]]:
    opts = dict(time_scale=TEST_SCALE, tls_certfile=str(pki.cert), tls_keyfile=str(pki.key))
    sims = {"crusoe": CrusoeSim(SimOptions(**opts)), "lambda": LambdaSim(SimOptions(**opts)),
            "nebius": NebiusSim(SimOptions(**opts))}
    try:
        for s in sims.values():
            s.start(0)
        yield sims
    finally:
        for s in sims.values():
            s.stop()


def tls_env(home: Path, sims: dict, **extra: str) -> dict[str, str]:
    env = {"VMOPS_HOME": str(home), "VMOPS_POLL_INTERVAL": str(POLL), "VMOPS_OP_TIMEOUT": "30",
           "VMOPS_CRUSOE_URL": sims["crusoe"].address, "VMOPS_LAMBDA_URL": sims["lambda"].address,
           "VMOPS_NEBIUS_ENDPOINT": "grpcs://" + sims["nebius"].address, "VMOPS_PROVIDERS": "crusoe,lambda,nebius"}
    env.update(extra)
    return env


def test_simulators_serve_tls_when_asked(tls_sims):
    assert tls_sims["crusoe"].address.startswith("https://127.0.0.1:")
    assert tls_sims["lambda"].address.startswith("https://127.0.0.1:")
    # off by default: a simulator built with SimOptions() serves plaintext
    assert SimOptions().tls_certfile is None and CrusoeSim(SimOptions()).scheme == "http"


def test_vm_list_over_tls_with_the_ca_bundle(tls_sims, pki, tmp_path):
    env = tls_env(tmp_path / "home", tls_sims, VMOPS_CA_BUNDLE=str(pki.ca))
    r = vm(["list", "--json"], env)
    assert r.code == 0, r.err
    by_provider = {i["provider"] for i in r.json()}
    assert by_provider == {"crusoe", "lambda", "nebius"}, r.out  # every simulator has seed VMs
    assert "warning" not in r.err  # TLS to loopback: nothing to warn about
    assert all(sum(sim.requests.counts().values()) for sim in tls_sims.values()), "a simulator saw no request"
    record("tls: vm list over TLS with the CA bundle (3 providers)", passed=r.code == 0)


def test_per_provider_ca_bundle_and_a_mutation_over_tls(tls_sims, pki, tmp_path):
    env = tls_env(tmp_path / "home", tls_sims, VMOPS_CRUSOE_CA_BUNDLE=str(pki.ca),
                  VMOPS_LAMBDA_CA_BUNDLE=str(pki.ca), VMOPS_NEBIUS_CA_BUNDLE=str(pki.ca))
    cfg = load_config(env)
    assert all(cfg.settings(n).ca_bundle == str(pki.ca) for n in cfg.enabled)
    with Session(cfg, timing=FAST) as s:
        for name in cfg.enabled:
            p = s.provider(name)
            inst = p.create(CreateRequest(name=f"tls-{name}", native_type=p.catalogue.types[0].name), wait=True)
            assert inst.state is State.RUNNING
            assert p.destroy(inst.id, wait=True).state is State.DELETED
            assert p.find_by_name(f"tls-{name}") == []
    record("tls: create + destroy over TLS (3 providers)", passed=True)


@pytest.mark.parametrize("ca", ["none", "other"])
def test_without_the_ca_every_provider_fails_typed_with_a_ca_hint(tls_sims, pki, tmp_path, ca):
    extra = {} if ca == "none" else {"VMOPS_CA_BUNDLE": str(pki.other_ca)}
    env = tls_env(tmp_path / "home", tls_sims, **extra)
    r = vm(["list"], env, timeout=120)
    assert r.code == 12, (r.code, r.err)  # every provider failed the same way: ProviderUnavailable
    for name in ("crusoe", "lambda", "nebius"):
        line = next((ln for ln in r.err.splitlines() if f"{name} could not be listed: " in ln), "")
        assert "certificate could not be verified" in line, r.err
    assert "CA_BUNDLE" in r.err
    assert "Traceback" not in r.err
    # the library gets the typed error, per provider, without retrying a certificate failure
    with Session(load_config(env), timing=FAST) as s:
        out = s.instances()
    assert set(out.failures) == {"crusoe", "lambda", "nebius"}
    for err in out.failures.values():
        assert isinstance(err, ProviderUnavailable) and "CA_BUNDLE" in err.hint
    record(f"tls: no usable CA ({ca}) -> typed error with hint", passed=True)


def test_plaintext_client_to_a_tls_server_is_a_clean_error(tls_sims, tmp_path):
    env = tls_env(tmp_path / "home", tls_sims, VMOPS_PROVIDERS="crusoe",
                  VMOPS_CRUSOE_URL=tls_sims["crusoe"].address.replace("https://", "http://"))
    r = vm(["list"], env)
    assert r.code == 12 and "Traceback" not in r.err and r.err.startswith("error: crusoe:"), r.err


def test_missing_ca_bundle_file_is_a_usage_error(tls_sims, tmp_path):
    env = tls_env(tmp_path / "home", tls_sims, VMOPS_CA_BUNDLE=str(tmp_path / "nope.pem"))
    r = vm(["list"], env)
    assert r.code == 2 and "nope.pem" in r.err and "cannot be read" in r.err, r.err


# ---- plaintext to a host other than loopback: a warning, decided from the configuration -------------


def _settings(url: str, tls: bool = False, name: str = "crusoe"):
    from vmops.config import ProviderSettings

    return ProviderSettings(name=name, url=url, api_key=Secret("k"), tls=tls)


@pytest.mark.parametrize("url,tls,warned", [
    ("http://127.0.0.1:8001", False, False),
    ("http://localhost:8001", False, False),
    ("http://[::1]:8001", False, False),
    ("https://10.255.255.1", False, False),
    ("http://10.255.255.1", False, True),
    ("http://crusoe.example.internal/v1", False, True),
    ("127.0.0.1:50051", False, False),
    ("10.255.255.1:50051", False, True),
    ("10.255.255.1:50051", True, False),
    ("grpcs://10.255.255.1:443", False, False),
    ("grpc://10.255.255.1:443", True, True),
])
def test_plaintext_remote_decision(url, tls, warned):
    assert plaintext_remote(_settings(url, tls)) is warned


def test_cli_warns_once_for_plaintext_to_a_remote_host(tmp_path):
    # `vm config show` only loads the configuration: no packet goes to 10.255.255.1
    env = {"VMOPS_HOME": str(tmp_path), "VMOPS_CRUSOE_URL": "http://10.255.255.1",
           "VMOPS_NEBIUS_ENDPOINT": "10.255.255.1:50051"}
    r = vm(["config", "show"], env)
    assert r.code == 0, r.err
    warnings = [ln for ln in r.err.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 2, r.err
    assert any("crusoe: http://10.255.255.1 is not encrypted" in w for w in warnings)
    assert any("nebius: 10.255.255.1:50051 is not encrypted" in w for w in warnings)
    quiet = vm(["config", "show"], {"VMOPS_HOME": str(tmp_path), "VMOPS_NEBIUS_TLS": "1",
                                     "VMOPS_NEBIUS_ENDPOINT": "10.255.255.1:443"})
    assert "warning" not in quiet.err, quiet.err
    record("plaintext to a non-loopback host is warned", passed=True)
