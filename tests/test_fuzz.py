"""Hostile input, fuzzed: targets, config values, environment.

For any input, pyhost either accepts it or raises ``ValueError`` (or a typed
``HostError``) with a message naming what was wrong: never another exception,
never a child process, never code run for input it refuses.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import sys

import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyhost import FlaskHost, HostError
from pyhost.config import HostConfig, field_names
from pyhost.fields import settings as config_fields
from pyhost.targets import parse_target, stdlib_module_names

KINDS = {field.name: field.metadata["kind"] for field in config_fields(HostConfig)}
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def children():
    return {child.pid for child in psutil.Process().children(recursive=True)
            if child.status() != psutil.STATUS_ZOMBIE}


@pytest.fixture(scope="module")
def baseline():
    return children()


def assert_refused_without_a_process(make, baseline, *, field=None):
    """``make()`` raises ValueError/HostError with a message; no new child process."""
    with pytest.raises((ValueError, HostError)) as info:
        make()
    message = str(info.value)
    assert message and len(message) < 2000, message
    if field is not None:
        assert field in message, message
    assert children() <= baseline
    assert not multiprocessing.active_children()
    return message


# --------------------------------------------------------------------------- targets
STDLIB = sorted(name for name in stdlib_module_names() if not name.startswith("_"))
literals = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=10)


@FUZZ
@given(st.text(max_size=300))
def test_any_text_parses_or_is_a_value_error(text):
    try:
        spec = parse_target(text)
    except (ValueError, HostError) as exc:
        assert str(exc)
        return
    assert spec["kind"] in ("module", "file") and spec["label"] == text


@FUZZ
@given(module=st.sampled_from(STDLIB), attr=st.sampled_from(
    ["system", "exec", "run", "Popen", "remove", "rmtree", "eval", "import_module", "app"]),
    args=st.lists(literals, max_size=3), call=st.booleans())
def test_stdlib_targets_are_refused_before_any_process(module, attr, args, call, baseline,
                                                       tmp_path_factory):
    marker = tmp_path_factory.getbasetemp() / "pwned"
    arguments = ", ".join([repr(str(marker))] + [repr(arg) for arg in args])
    target = "%s:%s(%s)" % (module, attr, arguments) if call else "%s:%s" % (module, attr)
    assert_refused_without_a_process(lambda: FlaskHost(target, port=0).start(), baseline,
                                     field=repr(module))
    assert not marker.exists()


@FUZZ
@given(depth=st.integers(min_value=33, max_value=20000), width=st.integers(1, 3),
       where=st.sampled_from(["module", "attr"]))
def test_deep_dotted_targets_are_value_errors(depth, width, where, baseline):
    dotted = ".".join(["a" * width] * depth)
    target = "%s:app" % dotted if where == "module" else "myapp:%s" % dotted
    assert_refused_without_a_process(lambda: FlaskHost(target, port=0), baseline)


@FUZZ
@given(size=st.integers(min_value=1025, max_value=200000),
       shape=st.sampled_from(["string", "list", "nested", "dict"]))
def test_huge_factory_arguments_are_value_errors(size, shape, baseline):
    argument = {"string": lambda: repr("x" * size),
                "list": lambda: repr([1] * (size // 3)),
                "nested": lambda: "[" * (size // 2) + "]" * (size // 2),
                "dict": lambda: repr({str(i): i for i in range(size // 8)})}[shape]()
    target = "myapp:create_app(%s)" % argument
    assert_refused_without_a_process(lambda: FlaskHost(target, port=0), baseline)


@FUZZ
@given(st.text(min_size=1, max_size=50).filter(lambda s: "\x00" in s or any(
    ord(c) < 32 for c in s)))
def test_targets_with_control_characters_are_value_errors(text):
    with pytest.raises(ValueError):
        parse_target("myapp:a" + text + "b")  # at the ends, whitespace is stripped


# --------------------------------------------------------------------------- config
hostile_values = (
    st.none() | st.booleans()
    | st.integers(min_value=-10**30, max_value=10**30)
    | st.sampled_from([10**6, 10**9, 2**63, -1, 0, 65536])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.text(alphabet=st.sampled_from("\x00\x01\n\t /a:%"), max_size=10)
    | st.lists(st.text(max_size=5), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)
)


@FUZZ
@given(values=st.dictionaries(st.sampled_from(field_names()), hostile_values, min_size=1,
                              max_size=4))
def test_config_values_are_accepted_or_refused_naming_the_field(values, baseline):
    try:
        config = HostConfig(**values)
    except ValueError as exc:
        message = str(exc)
        assert message.startswith("HostConfig."), message
        named = message[len("HostConfig."):].split(":")[0]
        assert named in values, (named, values)
        # The host refuses it the same way, before any process.
        assert_refused_without_a_process(
            lambda: FlaskHost("apps.hello:app", **values).start(), baseline,
            field="HostConfig.%s" % named)
        return
    for name in values:  # what was accepted is sane
        accepted = getattr(config, name)
        if isinstance(accepted, float):
            assert math.isfinite(accepted) and accepted <= 365 * 24 * 3600
        if KINDS[name] is int:
            assert accepted <= 100000 or name == "port"


@FUZZ
@given(env=st.dictionaries(st.text(max_size=30), st.text(max_size=60), max_size=5))
def test_env_is_accepted_or_refused_with_a_message_and_never_shown(env, baseline):
    try:
        config = HostConfig(env=env)
    except ValueError as exc:
        message = str(exc)
        assert message.startswith("HostConfig.env"), message
        assert any("\x00" in key + value or not key or "=" in key for key, value in env.items())
        for value in env.values():
            if len(value) > 3:
                assert value not in message  # a value may be a secret
        assert_refused_without_a_process(
            lambda: FlaskHost("apps.hello:app", env=env).start(), baseline,
            field="HostConfig.env")
        return
    assert not any("\x00" in key + value for key, value in env.items())
    masked = {key: "***" for key in env}
    assert config.to_dict()["env"] == masked
    assert "env=%r" % (masked,) in repr(config)
    assert config.to_dict(reveal=True)["env"] == env


@FUZZ
@given(st.dictionaries(st.sampled_from(["PYHOST_" + name.upper() for name in field_names()]),
                       st.text(max_size=40).filter(lambda s: "\x00" not in s),
                       min_size=1, max_size=4))
def test_pyhost_environment_variables_are_read_or_refused_naming_the_variable(environ):
    try:
        HostConfig.from_env(environ=environ)
    except ValueError as exc:
        message = str(exc)
        assert message.startswith("HostConfig."), message
        assert any(variable in message for variable in environ), message


def test_the_fuzzing_left_nothing_behind(baseline):
    assert children() <= baseline
    assert not multiprocessing.active_children()
    assert os.getpid() and sys.modules.get("myapp") is None  # nothing imported the targets
