"""Configuration precedence (env > file > default), key masking, and that keys never print."""

import pytest

from vmops.config import Secret, load_config


def test_defaults_point_at_the_simulators(tmp_path):
    cfg = load_config({"VMOPS_HOME": str(tmp_path)})
    assert cfg.enabled == ("crusoe", "lambda", "nebius")
    assert cfg.settings("crusoe").url == "http://127.0.0.1:8001"
    assert cfg.settings("nebius").url == "127.0.0.1:50051"
    assert cfg.settings("nebius").scope == "project-e1a2b3c4"
    assert cfg.settings("lambda").scope is None
    assert cfg.state_path == tmp_path / "state.db"


def test_env_beats_file_beats_default(tmp_path):
    (tmp_path / "config.toml").write_text(
        'providers = ["crusoe", "nebius"]\npoll_interval = 2.5\n'
        '[crusoe]\nurl = "https://crusoe.example.test"\nproject = "p-file"\napi_key = "file-key-0000000000"\n'
        '[nebius]\nparent = "project-file"\napi_key_env = "MY_NEBIUS_KEY"\n'
    )
    env = {"VMOPS_HOME": str(tmp_path), "VMOPS_CRUSOE_PROJECT": "p-env", "MY_NEBIUS_KEY": "neb-from-named-env"}
    cfg = load_config(env)
    c = cfg.settings("crusoe")
    assert (c.url, c.scope, c.tls) == ("https://crusoe.example.test", "p-env", True)
    assert c.sources["scope"] == "env" and c.sources["url"] == "file"
    assert c.api_key.reveal() == "file-key-0000000000"
    assert cfg.settings("nebius").api_key.reveal() == "neb-from-named-env"
    assert cfg.enabled == ("crusoe", "nebius") and cfg.poll_interval == 2.5


def test_bad_values_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown provider"):
        load_config({"VMOPS_HOME": str(tmp_path), "VMOPS_PROVIDERS": "crusoe,aws"})
    (tmp_path / "config.toml").write_text("this is = = not toml")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config({"VMOPS_HOME": str(tmp_path)})


def test_secret_never_prints_itself(tmp_path):
    key = "sk-very-secret-value-123456"
    s = Secret(key)
    assert key not in repr(s) and key not in str(s) and key not in f"{s}" and key not in s.masked()
    cfg = load_config({"VMOPS_HOME": str(tmp_path), "VMOPS_LAMBDA_API_KEY": key})
    assert key not in repr(cfg) and key not in str(cfg.describe())
