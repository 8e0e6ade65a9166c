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


def test_poll_settings_reach_the_adapters(tmp_path):
    from vmops.providers import get_provider

    (tmp_path / "config.toml").write_text("poll_min = 0.2\n")
    cfg = load_config({"VMOPS_HOME": str(tmp_path), "VMOPS_POLL_INTERVAL": "3"})
    timing = get_provider("crusoe", cfg).timing
    assert (timing.poll_min, timing.poll_interval) == (0.2, 3.0)
    adapter = get_provider("crusoe", load_config({"VMOPS_HOME": str(tmp_path), "VMOPS_POLL_MIN": "0.5"}))
    assert adapter.poll_delay(0.0) == 0.5 and adapter.poll_delay(100.0) == 1.0  # 5% of 100 s, capped at 1 s


@pytest.mark.parametrize("var,value", [("VMOPS_POLL_MIN", "-1"), ("VMOPS_POLL_INTERVAL", "0"),
                                       ("VMOPS_OP_TIMEOUT", "nan"), ("VMOPS_POLL_MIN", "soon")])
def test_bad_timing_settings_are_refused(tmp_path, var, value):
    with pytest.raises(ValueError):
        load_config({"VMOPS_HOME": str(tmp_path), var: value})


def test_deadline_and_breaker_settings(tmp_path):
    import pytest

    from vmops.providers import get_provider

    (tmp_path / "config.toml").write_text("deadline = 4\nbreaker = 0\n")
    cfg = load_config({"VMOPS_HOME": str(tmp_path)})
    assert (cfg.deadline, cfg.breaker_seconds) == (4.0, 0.0)
    timing = get_provider("lambda", cfg).timing
    assert (timing.deadline, timing.request_timeout, timing.connect_timeout) == (4.0, 4.0, 1.0)
    env = load_config({"VMOPS_HOME": str(tmp_path), "VMOPS_DEADLINE": "20", "VMOPS_BREAKER_SECONDS": "5"})
    assert (env.deadline, env.breaker_seconds) == (20.0, 5.0)  # the environment wins
    defaults = load_config({"VMOPS_HOME": str(tmp_path / "none")})
    assert (defaults.deadline, defaults.breaker_seconds) == (10.0, 30.0)
    with pytest.raises(ValueError, match="VMOPS_DEADLINE"):
        load_config({"VMOPS_HOME": str(tmp_path), "VMOPS_DEADLINE": "-1"})
    # a wrong value is named where it was set, never a bare "could not convert string to float"
    with pytest.raises(ValueError, match="^VMOPS_BREAKER_SECONDS: 'x' is not a number of seconds$"):
        load_config({"VMOPS_HOME": str(tmp_path), "VMOPS_BREAKER_SECONDS": "x"})
    with pytest.raises(ValueError, match="^VMOPS_DEADLINE must be more than 0 seconds"):
        load_config({"VMOPS_HOME": str(tmp_path), "VMOPS_DEADLINE": "inf"})
    (tmp_path / "config.toml").write_text('deadline = "soon"\n')
    with pytest.raises(ValueError, match="^deadline in .*config.toml: 'soon' is not a number of seconds$"):
        load_config({"VMOPS_HOME": str(tmp_path)})


def test_python_session_never_sends_the_simulator_key_to_a_real_endpoint(tmp_path):
    """The rule is in vmops.config and the Session applies it, so notebooks and playbooks get it too, not
    only the CLI: a non-loopback endpoint with no key of its own is a usage error naming the variable."""
    import pytest

    from vmops.errors import UsageError
    from vmops.session import Session

    s = Session(env={"VMOPS_HOME": str(tmp_path), "VMOPS_CRUSOE_URL": "https://crusoe.example.internal",
                     "VMOPS_CRUSOE_DIALECT": "reference"})
    with pytest.raises(UsageError, match="no API key") as ei:
        s.provider("crusoe")
    assert "VMOPS_CRUSOE_API_KEY" in (ei.value.hint or "")
    keyed = Session(env={"VMOPS_HOME": str(tmp_path), "VMOPS_CRUSOE_URL": "https://crusoe.example.internal",
                         "VMOPS_CRUSOE_DIALECT": "reference", "VMOPS_CRUSOE_API_KEY": "k-123"})
    assert keyed.provider("crusoe").name == "crusoe"  # built, nothing sent


def test_a_misspelled_setting_is_reported_with_the_one_it_resembles(tmp_path):
    """A typo used to be ignored in silence (the default URL used in its place, then "cannot connect")."""
    (tmp_path / "config.toml").write_text('deadlin = 5\n[crusoe]\nulr = "http://127.0.0.1:9"\nzzz = 1\n')
    cfg = load_config({"VMOPS_HOME": str(tmp_path)})
    assert cfg.settings("crusoe").url == "http://127.0.0.1:8001"  # still ignored: warned, not refused
    said = "\n".join(cfg.warnings)
    assert "unknown setting 'deadlin' is ignored (did you mean 'deadline'?)" in said
    assert "unknown setting 'ulr' in [crusoe] is ignored (did you mean 'url'?)" in said
    assert "unknown setting 'zzz' in [crusoe] is ignored" in said and len(cfg.warnings) == 3


def test_every_documented_setting_is_known(tmp_path):
    """The template `vm config init` writes, the README's example and every key the loader reads: no warning."""
    import re
    import tomllib
    from pathlib import Path

    import vmops.config as config
    from vmops.config import CONFIG_TEMPLATE, SECTION_KEYS, TOP_KEYS, unknown_settings

    uncommented = re.sub(r"^# ([a-z_]+ = )", r"\1", CONFIG_TEMPLATE, flags=re.M)
    readme = Path(__file__).resolve().parents[2].joinpath("README.md").read_text()
    example = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    for text in (uncommented, example):
        data = tomllib.loads(text)
        assert len(data) >= 3 and unknown_settings(tmp_path / "config.toml", data) == ()
    source = Path(config.__file__).read_text()
    read: set[str] = set()
    for group in re.findall(r'pick\("[a-z_]+", [^,]+, \(([^)]*)\)', source):
        read |= set(re.findall(r'"([a-z_]+)"', group))
    read |= set(re.findall(r'section\.get\("([a-z_]+)"\)', source))
    read |= set(re.findall(r'"([a-z_]+)" in section', source))
    nebius = source.split("def _nebius_cloud_settings", 1)[1].split("\n\n\n", 1)[0]
    read |= set(re.findall(r'\bget\("([a-z_]+)"\)', nebius))
    assert {"url", "api_key_file", "dialect", "iam_token", "terminate_batch"} <= read  # the patterns still match
    assert read <= SECTION_KEYS, read - SECTION_KEYS
    assert {"deadline", "breaker", "db_url", "providers", "poll_interval"} <= TOP_KEYS
