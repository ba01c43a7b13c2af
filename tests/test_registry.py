"""One registry for tasks, styles, backends and presets: the same errors, lazy entries, descriptions."""

import sys

import pytest

from selfexplain.backends import BACKENDS, load_backend, register_backend
from selfexplain.errors import UserError
from selfexplain.experiments import PRESETS, load_experiment
from selfexplain.registry import Registry
from selfexplain.styles import STYLES
from selfexplain.tasks import TASKS, get_task


def test_lazy_entries_import_on_first_use_only():
    r: Registry = Registry("thing")
    r.add_lazy("json-dumps", "json:dumps", "the standard library's")
    r.add_lazy("missing", "selfexplain_no_such_module:thing")
    assert r.names() == ["json-dumps", "missing"] and r.describe() == "json-dumps (the standard library's), missing"
    import json

    assert r.get("json-dumps") is json.dumps
    with pytest.raises(ModuleNotFoundError):
        r.get("missing")


def test_the_backends_are_listed_without_importing_them():
    import subprocess

    code = ("import sys; from selfexplain.backends import BACKENDS, describe_backends; describe_backends(); "
            "print(sorted(m for m in sys.modules if m.startswith('selfexplain.backends.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("registry,unknown,kinds", [
    (TASKS, "imdb", "tasks"), (STYLES, "saliency", "styles"), (BACKENDS, "tgi", "backends"), (PRESETS, "huge", "presets")])
def test_every_registry_names_the_unknown_and_lists_the_known_in_one_line(registry, unknown, kinds):
    with pytest.raises(UserError) as e:
        registry.get(unknown)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"unknown {kinds[:-1]} {unknown!r}; known {kinds}: ")
    assert all(name in message for name in registry.names())


@pytest.mark.parametrize("registry,taken", [(TASKS, "tweets"), (STYLES, "redaction"), (BACKENDS, "hf"),
                                            (PRESETS, "paper")])
def test_every_registry_refuses_a_taken_name_unless_replacing(registry, taken):
    with pytest.raises(UserError, match=f"'{taken}' is already registered"):
        registry.add(taken, object())


def test_the_lookups_go_through_the_registries():
    """A backend registered by a user is loaded by name; the task, style and preset loaders read the same tables."""
    class Fake:
        def __init__(self, model, **kwargs):
            self.model, self.kwargs = model, kwargs

    register_backend("fake-test", "a test's")(Fake)
    try:
        be = load_backend("fake-test", "m", x=1)
        assert (be.model, be.kwargs) == ("m", {"x": 1}) and "fake-test (a test's)" in BACKENDS.describe()
    finally:
        BACKENDS.remove("fake-test")
    assert get_task("tweets") is TASKS.get("tweets")
    assert load_experiment("cpu-small").name == "cpu-small"
    with pytest.raises(UserError, match="or a path to an experiment .yaml"):
        load_experiment("cpu-huge")
