"""HostConfig: the contract's fields and defaults, validation up front, from_env()."""
from __future__ import annotations

import dataclasses
import json
import multiprocessing

import pytest

from pyhost import FlaskHost, HostConfig
from pyhost.config import default_start_method

# The contract table in DESIGN.md: name -> default.
CONTRACT_DEFAULTS = {
    "port": 5001,
    "host": "127.0.0.1",
    "health_path": None,
    "health_check_timeout": 10.0,
    "health_check_interval": 0.5,
    "health_check_backoff": 1.2,
    "health_check_max_interval": 2.0,
    "health_check_max_retries": 20,
    "startup_timeout": 60.0,
    "shutdown_timeout": 5.0,
    "is_development": None,
    "external_url": None,
    "auto_restart": True,
    "max_restart_attempts": 3,
    "restart_delay": 2.0,
    "restart_window": 60.0,
    "liveness_interval": 10.0,
    "liveness_failures": 3,
    "start_method": None,
    "python": None,
    "requires": (),
    "env": {},
    "stderr_lines": 50,
    "workers": 1,
    "server": "werkzeug",
    "cooldown": None,
    "expose_details": False,
    "debug": False,
}


def test_every_contract_field_has_its_default():
    config = HostConfig()
    names = [f.name for f in dataclasses.fields(HostConfig)]
    assert sorted(names) == sorted(CONTRACT_DEFAULTS)
    for name, default in CONTRACT_DEFAULTS.items():
        assert getattr(config, name) == default, name


def test_config_is_frozen_and_replace_validates_again():
    config = HostConfig(port=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.port = 1  # type: ignore[misc]
    assert config.replace(port=8080).port == 8080
    with pytest.raises(ValueError, match="port"):
        config.replace(port=-1)
    with pytest.raises(TypeError, match="prot"):
        config.replace(prot=1)


def test_to_dict_is_json_serialisable():
    data = HostConfig(requires=("flask",), env={"A": "1"}).to_dict()
    assert json.loads(json.dumps(data))["requires"] == ["flask"]
    assert data["env"] == {"A": "***"}  # env values often hold secrets: masked by default
    assert HostConfig(env={"A": "1"}).to_dict(reveal=True)["env"] == {"A": "1"}


def test_default_start_method_is_never_plain_fork():
    expected = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    assert default_start_method() == expected
    assert HostConfig().resolved_start_method == expected
    assert HostConfig(start_method="fork").resolved_start_method == "fork"


def test_containers_are_normalised():
    assert HostConfig(requires="flask").requires == ("flask",)
    assert HostConfig(requires=["flask", "flask_cors"]).requires == ("flask", "flask_cors")
    env = {"A": "1"}
    config = HostConfig(env=env)
    env["B"] = "2"  # the caller's dict is copied, not kept
    assert config.env == {"A": "1"}


@pytest.mark.parametrize(
    "field, value",
    [
        ("port", 70000),
        ("port", -1),
        ("port", "5001"),
        ("port", True),
        ("port", 5001.0),
        ("host", ""),
        ("health_path", "health"),
        ("health_check_timeout", -1),
        ("health_check_timeout", 0),
        ("health_check_interval", -0.5),
        ("health_check_max_interval", -2),
        ("startup_timeout", -60),
        ("shutdown_timeout", -5),
        ("shutdown_timeout", float("nan")),
        ("restart_delay", -2),
        ("restart_window", 0),
        ("health_check_backoff", 0.5),
        ("health_check_max_retries", 0),
        ("max_restart_attempts", -1),
        ("liveness_interval", -10),
        ("liveness_failures", 0),
        ("start_method", "thread"),
        ("start_method", "FORK"),
        ("python", ""),
        ("stderr_lines", 0),
        ("workers", 0),
        ("server", "apache"),
        ("external_url", "localhost:5000"),
        ("auto_restart", "yes"),
        ("is_development", 1),
    ],
)
def test_bad_value_is_a_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError) as info:
        HostConfig(**{field: value})
    message = str(info.value)
    assert "HostConfig.%s" % field in message
    assert repr(value) in message or field in ("requires", "env")


def test_bad_requires_and_env_name_the_field():
    with pytest.raises(ValueError, match=r"HostConfig\.requires: 'flask,flask_cors'"):
        HostConfig(requires="flask,flask_cors")
    with pytest.raises(ValueError, match=r"HostConfig\.env"):
        HostConfig(env={"PORT": 5001})
    with pytest.raises(ValueError, match=r"HostConfig\.env"):
        HostConfig(env={"A=B": "1"})


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.org"])
def test_debug_is_refused_on_a_non_loopback_host(host):
    with pytest.raises(ValueError, match=r"HostConfig\.debug:.*loopback"):
        HostConfig(host=host, debug=True)
    HostConfig(host=host, debug=False)  # serving there without the debugger is fine


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_debug_is_allowed_on_loopback(host):
    assert HostConfig(host=host, debug=True).debug is True


def test_valid_edge_values_are_accepted():
    HostConfig(port=0)
    HostConfig(port=65535)
    HostConfig(restart_delay=0, max_restart_attempts=0)
    HostConfig(liveness_interval=None)
    HostConfig(health_path="/healthz", external_url="https://example.org/")


def test_flask_host_validates_before_any_process_starts():
    events = []
    with pytest.raises(ValueError, match=r"HostConfig\.port"):
        FlaskHost("apps.hello:app", port=70000, on_event=events.append)
    with pytest.raises(ValueError, match=r"HostConfig\.start_method"):
        FlaskHost("apps.hello:app", start_method="thread")
    with pytest.raises(TypeError):
        FlaskHost("apps.hello:app", prot=0)
    with pytest.raises(ValueError, match="app is required"):
        FlaskHost()
    with pytest.raises(ValueError, match="either app or external_url"):
        FlaskHost("apps.hello:app", external_url="http://127.0.0.1:1/")
    assert events == []


def test_flask_host_merges_config_and_fields():
    base = HostConfig(port=0, shutdown_timeout=1.0)
    host = FlaskHost("apps.hello:app", config=base, auto_restart=False)
    assert host.config.port == 0
    assert host.config.shutdown_timeout == 1.0
    assert host.config.auto_restart is False
    assert base.auto_restart is True
    with pytest.raises(ValueError, match=r"HostConfig\.port"):
        FlaskHost("apps.hello:app", config=base, port=70000)


# ---------------------------------------------------------------- from_env
def test_from_env_reads_prefixed_variables():
    environ = {
        "PYHOST_PORT": "0",
        "PYHOST_HOST": "localhost",
        "PYHOST_AUTO_RESTART": "false",
        "PYHOST_DEBUG": "yes",
        "PYHOST_HEALTH_CHECK_TIMEOUT": "2.5",
        "PYHOST_HEALTH_PATH": "/healthz",
        "PYHOST_REQUIRES": "flask, flask_cors",
        "PYHOST_LIVENESS_INTERVAL": "none",
        "PYHOST_START_METHOD": "spawn",
        "PYHOST_MAX_RESTART_ATTEMPTS": "5",
        "UNRELATED": "1",
    }
    config = HostConfig.from_env(environ=environ)
    assert config.port == 0
    assert config.host == "localhost"
    assert config.auto_restart is False
    assert config.debug is True
    assert config.health_check_timeout == 2.5
    assert config.health_path == "/healthz"
    assert config.requires == ("flask", "flask_cors")
    assert config.liveness_interval is None
    assert config.start_method == "spawn"
    assert config.max_restart_attempts == 5
    assert config.shutdown_timeout == 5.0  # untouched fields keep their defaults


def test_from_env_overrides_win_and_prefix_is_configurable():
    environ = {"APP_PORT": "6000", "PYHOST_PORT": "7000"}
    assert HostConfig.from_env(prefix="APP_", environ=environ).port == 6000
    assert HostConfig.from_env(environ=environ, port=0).port == 0


def test_from_env_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("PYHOST_STDERR_LINES", "7")
    assert HostConfig.from_env().stderr_lines == 7


def test_from_env_does_not_read_env_field():
    config = HostConfig.from_env(environ={"PYHOST_ENV": "A=1"})
    assert config.env == {}


@pytest.mark.parametrize(
    "variable, raw, field",
    [
        ("PYHOST_PORT", "abc", "port"),
        ("PYHOST_PORT", "70000", "port"),
        ("PYHOST_PORT", "5001.5", "port"),
        ("PYHOST_AUTO_RESTART", "maybe", "auto_restart"),
        ("PYHOST_HEALTH_CHECK_TIMEOUT", "-1", "health_check_timeout"),
        ("PYHOST_HEALTH_CHECK_TIMEOUT", "soon", "health_check_timeout"),
        ("PYHOST_START_METHOD", "thread", "start_method"),
        ("PYHOST_HEALTH_PATH", "healthz", "health_path"),
    ],
)
def test_from_env_bad_values_name_the_field_and_the_variable(variable, raw, field):
    with pytest.raises(ValueError) as info:
        HostConfig.from_env(environ={variable: raw})
    message = str(info.value)
    assert "HostConfig.%s" % field in message
    assert variable in message
    assert raw in message


def test_from_env_debug_with_public_host_is_refused():
    with pytest.raises(ValueError, match=r"HostConfig\.debug"):
        HostConfig.from_env(environ={"PYHOST_HOST": "0.0.0.0", "PYHOST_DEBUG": "1"})


def test_from_env_warns_about_a_misspelt_variable(caplog):
    with caplog.at_level("WARNING", logger="pyhost"):
        config = HostConfig.from_env(environ={"PYHOST_PROT": "0", "PYHOST_TEST_EXTRA": "x"})
    assert config.port == 5001  # the misspelt value is not applied...
    assert "PYHOST_PROT is not a pyhost setting and is ignored; did you mean PYHOST_PORT?" \
        in caplog.text  # ...but the user is told
    assert "PYHOST_TEST_EXTRA" not in caplog.text  # unrelated variables are left alone


# ------------------------------------------------------------- metadata, masking, bounds
def test_every_field_carries_help_env_and_flag_metadata():
    import dataclasses

    for field in dataclasses.fields(HostConfig):
        meta = field.metadata
        assert meta["help"].endswith("."), field.name
        assert meta["env"] in (None, "PYHOST_" + field.name.upper()), field.name
        assert meta["flag"] is None or meta["flag"].startswith("--"), field.name
    flags = {field.name: field.metadata["flag"] for field in dataclasses.fields(HostConfig)}
    assert flags["server"] == "--server" and flags["cooldown"] == "--cooldown"
    assert flags["expose_details"] == "--expose-details"


def test_from_env_reads_the_variable_named_in_the_metadata():
    config = HostConfig.from_env(environ={"PYHOST_SERVER": "waitress", "PYHOST_COOLDOWN": "none",
                                          "PYHOST_EXPOSE_DETAILS": "yes", "PYHOST_WORKERS": "2"})
    assert (config.server, config.cooldown, config.expose_details, config.workers) == \
        ("waitress", None, True, 2)


def test_env_values_are_masked_in_repr_and_to_dict_unless_revealed():
    config = HostConfig(env={"DATABASE_URL": "postgres://u:hunter2@db/x"})
    assert "hunter2" not in repr(config) and "hunter2" not in str(config.to_dict())
    assert config.to_dict()["env"] == {"DATABASE_URL": "***"}
    assert config.to_dict(reveal=True)["env"]["DATABASE_URL"].endswith("hunter2@db/x")
    assert config.env["DATABASE_URL"].endswith("hunter2@db/x")  # the child still gets it


@pytest.mark.parametrize("fields, named", [
    ({"env": {"A": "x\x00y"}}, "HostConfig.env"),
    ({"env": {"A\x00": "x"}}, "HostConfig.env"),
    ({"host": "127.0.0.1\x00"}, "HostConfig.host"),
    ({"health_path": "/health check"}, "HostConfig.health_path"),
    ({"health_path": "/health\r\nX: y"}, "HostConfig.health_path"),
    ({"workers": 10 ** 6}, "HostConfig.workers"),
    ({"stderr_lines": 10 ** 9}, "HostConfig.stderr_lines"),
    ({"max_restart_attempts": 10 ** 6}, "HostConfig.max_restart_attempts"),
    ({"health_check_max_retries": 10 ** 7}, "HostConfig.health_check_max_retries"),
    ({"requires": ["m%d" % i for i in range(300)]}, "HostConfig.requires"),
    ({"env": {"A": "x" * (256 * 1024)}}, "HostConfig.env"),
])
def test_hostile_values_are_refused_naming_the_field(fields, named):
    with pytest.raises(ValueError) as info:
        HostConfig(**fields)
    message = str(info.value)
    assert message.startswith(named) and len(message) < 400
    assert "x\x00y" not in message  # an env value may be a secret: never echoed
