"""The dialect seam: which dialect a provider speaks and where its credentials come from (vmops.config)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vmops.catalogue import PROVIDERS, provider_entry
from vmops.config import load_config


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"VMOPS_HOME": str(tmp_path / "home"), "HOME": str(tmp_path), **extra}


def test_default_dialect_follows_the_host(tmp_path: Path) -> None:
    cfg = load_config(_env(tmp_path))
    assert {n: s.dialect for n, s in cfg.providers.items()} == {n: "reference" for n in PROVIDERS}
    cfg = load_config(_env(tmp_path, VMOPS_CRUSOE_URL="https://api.cloud.crusoe.ai/v1alpha5",
                           VMOPS_LAMBDA_URL="https://cloud.lambda.ai/api/v1",
                           VMOPS_NEBIUS_ENDPOINT="compute.api.nebius.cloud:443"))
    assert {n: s.dialect for n, s in cfg.providers.items()} == {"crusoe": "cloud", "lambda": "cloud",
                                                                 "nebius": "cloud"}
    assert cfg.settings("crusoe").sources["dialect"] == "default"


def test_dialect_from_env_and_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[lambda]\ndialect = "cloud"\n')
    cfg = load_config(_env(tmp_path, VMOPS_CRUSOE_DIALECT="Cloud",
                           VMOPS_NEBIUS_ENDPOINT="compute.api.nebius.cloud:443", VMOPS_NEBIUS_DIALECT="reference"))
    got = {n: (s.dialect, s.sources["dialect"]) for n, s in cfg.providers.items()}
    assert got == {"crusoe": ("cloud", "env"), "lambda": ("cloud", "file"), "nebius": ("reference", "env")}
    assert cfg.describe()["providers"]["lambda"]["dialect"] == "cloud"
    with pytest.raises(ValueError, match="VMOPS_LAMBDA_DIALECT.*'real'.*reference, cloud"):
        load_config(_env(tmp_path, VMOPS_LAMBDA_DIALECT="real"))


def test_adapter_per_dialect() -> None:
    assert provider_entry("crusoe").adapter_for("cloud") == "vmops.providers.crusoe_cloud:CrusoeCloudProvider"
    assert provider_entry("lambda").adapter_for("cloud") == "vmops.providers.lambda_cloud:LambdaCloudProvider"
    assert provider_entry("nebius").adapter_for("cloud") == "vmops.providers.nebius_cloud:NebiusCloudProvider"
    assert provider_entry("nebius").adapter == "vmops.providers.nebius:NebiusProvider"
    with pytest.raises(ValueError, match="no 'x' dialect"):
        provider_entry("crusoe").adapter_for("x")


def test_crusoe_cloud_credentials_env_file_and_profile(tmp_path: Path) -> None:
    base = {"VMOPS_CRUSOE_DIALECT": "cloud"}
    cfg = load_config(_env(tmp_path, **base, VMOPS_CRUSOE_ACCESS_KEY_ID="AKID-0123456789",
                           VMOPS_CRUSOE_SECRET_KEY="AAECAwQFBgcICQoLDA0ODw"))
    s = cfg.settings("crusoe")
    assert (s.key_id, s.api_key.reveal(), s.sources["api_key"]) == \
        ("AKID-0123456789", "AAECAwQFBgcICQoLDA0ODw", "env:VMOPS_CRUSOE_SECRET_KEY")
    assert s.describe()["key_id"] == "AKID****" and "AAEC" not in str(s.describe())

    secret = tmp_path / "secret"
    secret.write_text("c2VjcmV0\n")
    secret.chmod(0o600)
    s = load_config(_env(tmp_path, **base, VMOPS_CRUSOE_ACCESS_KEY_ID="k", VMOPS_CRUSOE_SECRET_KEY_FILE=str(secret)))
    assert s.settings("crusoe").api_key.reveal() == "c2VjcmV0" and s.settings("crusoe").key_file == str(secret)

    (tmp_path / ".crusoe").mkdir()
    (tmp_path / ".crusoe" / "config").write_text(
        '[default]\naccess_key_id = "profile-key-id"\nsecret_key = "cHJvZmlsZQ"\n[other]\nsecret_key = "x"\n')
    s = load_config(_env(tmp_path, **base)).settings("crusoe")
    assert (s.key_id, s.api_key.reveal()) == ("profile-key-id", "cHJvZmlsZQ")
    assert s.sources["api_key"].startswith("profile:") and s.sources["api_key"].endswith("[default]")
    # the reference dialect never reads the cloud variables
    s = load_config(_env(tmp_path, VMOPS_CRUSOE_SECRET_KEY="zzz")).settings("crusoe")
    assert (s.dialect, s.api_key.reveal(), s.key_id) == ("reference", "crusoe-test-key-001", None)
