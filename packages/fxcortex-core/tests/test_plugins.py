"""The plugin manager and registry: loading, validation, blocking, and errors naming plugins."""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from fxcortex.core import (
    DuplicateRegistrationError,
    PluginError,
    Registry,
    UnknownComponentError,
    hookimpl,
    make_plugin_manager,
)
from fxcortex.core.plugins import disabled_plugin_names

NO_ENV: dict[str, str] = {}


def isolated(*plugins: tuple[str, object], environ: dict[str, str] | None = None) -> Any:
    """A manager with only these plugins: no installed entry points."""
    return make_plugin_manager(
        plugins=plugins, load_entry_points=False, environ=environ if environ is not None else NO_ENV
    )


# Registering plugins and collecting components


def test_plugins_passed_in_are_registered_under_their_names(components: Any) -> None:
    plugin = components.plugin()

    manager = isolated(("mine", plugin))

    assert manager.get_plugin("mine") is plugin
    assert manager.infos["mine"].name == "mine"
    assert manager.infos["mine"].distribution is None


def test_a_module_is_a_plugin_too(components: Any) -> None:
    module = SimpleNamespace(
        __name__="my_plugin_module",
        fxcortex_register_sources=hookimpl(lambda register: register(components.source("mod"))),
    )

    registry = Registry.collect(isolated(("modular", module)))

    assert list(registry.sources) == ["mod"]
    assert registry.owners[("source", "mod")] == "modular"


def test_registry_collect_gathers_every_kind_of_component_with_its_owner(components: Any) -> None:
    first = components.plugin(
        sources=[components.source("alpha"), components.source("beta")],
        analyzers=[components.analyzer("bars")],
    )
    second = components.plugin(transforms=[components.transform("rescale")])

    registry = Registry.collect(isolated(("first", first), ("second", second)))

    assert set(registry.sources) == {"alpha", "beta"}
    assert list(registry.transforms) == ["rescale"]
    assert list(registry.analyzers) == ["bars"]
    assert registry.source("beta") is first.sources[1]
    assert registry.analyzer("bars") is first.analyzers[0]
    assert registry.owners == {
        ("source", "alpha"): "first",
        ("source", "beta"): "first",
        ("analyzer", "bars"): "first",
        ("transform", "rescale"): "second",
    }


def test_an_unknown_component_name_lists_the_registered_ones(components: Any) -> None:
    registry = Registry.collect(
        isolated(("p", components.plugin(sources=[components.source("b"), components.source("a")])))
    )

    with pytest.raises(UnknownComponentError, match=r"no source named 'c'; registered: a, b"):
        registry.source("c")
    with pytest.raises(LookupError, match="no analyzer named 'ohlc'; registered: none"):
        registry.analyzer("ohlc")


def test_the_fixtures_for_plugin_authors_add_their_plugin_to_the_installed_ones(
    fxcortex_registry: Callable[..., Registry], components: Any
) -> None:
    registry = fxcortex_registry(components.plugin(sources=[components.source("author")]))

    assert "author" in registry.sources
    assert "ecb" in registry.sources


# Errors that name plugins


@pytest.mark.parametrize("kind", ["sources", "transforms", "analyzers"])
def test_a_duplicate_name_names_both_plugins(components: Any, kind: str) -> None:
    make = {
        "sources": components.source,
        "transforms": components.transform,
        "analyzers": components.analyzer,
    }[kind]
    first = components.plugin(**{kind: [make("same")]})
    second = components.plugin(**{kind: [make("same")]})

    with pytest.raises(DuplicateRegistrationError) as caught:
        Registry.collect(isolated(("first-plugin", first), ("second-plugin", second)))

    error = caught.value
    assert (error.first, error.second, error.name) == ("first-plugin", "second-plugin", "same")
    assert error.plugin == "second-plugin"
    assert "'first-plugin'" in str(error)
    assert "'second-plugin'" in str(error)
    assert kind.rstrip("s") in str(error)


def test_a_source_named_like_a_built_in_one_names_the_built_in_plugin(components: Any) -> None:
    squatter = components.plugin(sources=[components.source("ecb")])

    with pytest.raises(DuplicateRegistrationError) as caught:
        Registry.collect(make_plugin_manager(plugins=[("squatter", squatter)], environ=NO_ENV))

    assert {caught.value.first, caught.value.second} == {"ecb", "squatter"}


def test_the_same_name_for_different_kinds_is_no_duplicate(components: Any) -> None:
    plugin = components.plugin(
        sources=[components.source("ecb-x")], analyzers=[components.analyzer("ecb-x")]
    )

    registry = Registry.collect(isolated(("p", plugin)))

    assert "ecb-x" in registry.sources
    assert "ecb-x" in registry.analyzers


@pytest.mark.parametrize(
    ("kind", "protocol"),
    [("sources", "Source"), ("transforms", "Transform"), ("analyzers", "Analyzer")],
)
def test_registering_an_object_lacking_the_protocol_names_the_plugin(
    components: Any, kind: str, protocol: str
) -> None:
    lazy = components.plugin(**{kind: [SimpleNamespace(name="half-done")]})

    with pytest.raises(PluginError) as caught:
        Registry.collect(isolated(("lazy-plugin", lazy)))

    assert caught.value.plugin == "lazy-plugin"
    assert f"lacks part of the {protocol} protocol" in str(caught.value)
    assert "'lazy-plugin'" in str(caught.value)


def test_a_register_hook_that_raises_names_the_plugin_and_chains_the_cause() -> None:
    class Crashing:
        @hookimpl
        def fxcortex_register_analyzers(self, register: Callable[[Any], None]) -> None:
            raise KeyError("settings")

    with pytest.raises(PluginError, match="registering analyzers failed") as caught:
        Registry.collect(isolated(("crashing", Crashing())))

    assert caught.value.plugin == "crashing"
    assert isinstance(caught.value.__cause__, KeyError)


def test_a_hook_implementation_with_a_wrong_argument_name_fails_fast_naming_the_plugin() -> None:
    class Misspelt:
        @hookimpl
        def fxcortex_register_sources(self, registr: Callable[[Any], None]) -> None:
            raise AssertionError("never called")

    with pytest.raises(PluginError, match="invalid hook implementation") as caught:
        isolated(("misspelt", Misspelt()))

    assert caught.value.plugin == "misspelt"
    assert "registr" in str(caught.value)


def test_a_hook_implementation_of_no_known_hook_fails_fast_naming_the_plugin() -> None:
    class Typo:
        @hookimpl
        def fxcortex_register_source(self, register: Callable[[Any], None]) -> None:
            raise AssertionError("never called")

    with pytest.raises(PluginError) as caught:
        isolated(("typo", Typo()))

    assert caught.value.plugin == "typo"
    assert "fxcortex_register_source" in str(caught.value)


def test_a_plugin_name_taken_by_an_installed_plugin_is_refused(components: Any) -> None:
    with pytest.raises(PluginError) as caught:
        make_plugin_manager(plugins=[("ecb", components.plugin())], environ=NO_ENV)

    assert caught.value.plugin == "ecb"


# Blocking and tracing


def test_disabled_plugin_names_are_read_comma_separated_ignoring_blanks() -> None:
    environ = {"FXCORTEX_DISABLED_PLUGINS": " ecb, ,ohlc ,"}

    assert disabled_plugin_names(environ) == {"ecb", "ohlc"}
    assert disabled_plugin_names({}) == set()


def test_a_disabled_built_in_plugin_is_not_registered() -> None:
    manager = make_plugin_manager(environ={"FXCORTEX_DISABLED_PLUGINS": "ecb"})

    assert not manager.has_plugin("ecb")
    assert manager.has_plugin("ohlc")
    assert "ecb" not in Registry.collect(manager).sources


def test_a_disabled_plugin_passed_in_is_not_registered(components: Any) -> None:
    plugin = components.plugin(sources=[components.source("blocked-source")])

    manager = isolated(
        ("wanted", components.plugin()),
        ("unwanted", plugin),
        environ={"FXCORTEX_DISABLED_PLUGINS": "unwanted"},
    )

    assert manager.has_plugin("wanted")
    assert not manager.has_plugin("unwanted")
    assert Registry.collect(manager).sources == {}


def test_tracing_plugins_writes_hook_calls_to_stderr(
    components: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    manager = isolated(
        ("traced", components.plugin(sources=[components.source("s")])),
        environ={"FXCORTEX_TRACE_PLUGINS": "1"},
    )

    manager.hook.fxcortex_register_sources(register=lambda source: None)

    assert "fxcortex_register_sources" in capsys.readouterr().err


def test_without_tracing_hook_calls_are_silent(
    components: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    manager = isolated(("quiet", components.plugin()))

    manager.hook.fxcortex_register_sources(register=lambda source: None)

    assert capsys.readouterr().err == ""


# Entry points


def test_the_built_in_entry_points_are_discovered_with_their_distributions() -> None:
    manager = make_plugin_manager(environ=NO_ENV)

    ecb, ohlc = manager.infos["ecb"], manager.infos["ohlc"]
    assert (ecb.distribution, ecb.module) == ("fxcortex-sources", "fxcortex.sources.ecb")
    assert ecb.version == importlib.metadata.version("fxcortex-sources")
    assert (ohlc.distribution, ohlc.module) == ("fxcortex-analytics", "fxcortex.analytics.ohlc")
    assert ohlc.version == importlib.metadata.version("fxcortex-analytics")
    registry = Registry.collect(manager)
    assert type(registry.source("ecb")).__name__ == "EcbSource"
    assert type(registry.analyzer("ohlc")).__name__ == "OhlcAnalyzer"
    assert registry.owners[("source", "ecb")] == "ecb"


def test_a_third_party_entry_point_is_loaded_with_its_distribution(
    install_distribution: Callable[..., Any],
) -> None:
    installed = install_distribution(
        entry_points={"thirdparty": "fx_third_{suffix}"},
        modules={
            "fx_third_{suffix}": """
                from datetime import timedelta
                from fxcortex.core import Schedule, hookimpl

                class Source:
                    name = "third"
                    description = "a third-party source"
                    schedule = Schedule(cron="0 * * * *")
                    currencies = ("USD",)
                    history_since = None
                    observation_interval = timedelta(hours=1)

                    def fetch(self, window):
                        return []

                    def configure(self, **options):
                        return self

                @hookimpl
                def fxcortex_register_sources(register):
                    register(Source())
            """
        },
        version="4.5.6",
    )

    manager = make_plugin_manager(environ=NO_ENV)

    info = manager.infos["thirdparty"]
    assert (info.distribution, info.version) == (installed.name, "4.5.6")
    assert info.module in installed.modules
    registry = Registry.collect(manager)
    assert registry.owners[("source", "third")] == "thirdparty"


def test_an_entry_point_whose_import_fails_names_the_plugin_and_chains_the_cause(
    install_distribution: Callable[..., Any],
) -> None:
    installed = install_distribution(
        entry_points={"broken": "fx_broken_{suffix}"},
        modules={"fx_broken_{suffix}": "raise RuntimeError('no API key configured')\n"},
    )

    with pytest.raises(PluginError) as caught:
        make_plugin_manager(environ=NO_ENV)

    error = caught.value
    assert error.plugin == "broken"
    assert "failed to import" in str(error)
    assert installed.name in str(error)
    assert "no API key configured" in str(error)
    assert isinstance(error.__cause__, RuntimeError)


def test_an_entry_point_naming_a_missing_module_names_the_plugin_and_chains_the_cause(
    install_distribution: Callable[..., Any],
) -> None:
    install_distribution(entry_points={"ghost": "fx_ghost_module_{suffix}"})

    with pytest.raises(PluginError) as caught:
        make_plugin_manager(environ=NO_ENV)

    assert caught.value.plugin == "ghost"
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_a_disabled_entry_point_is_not_even_imported(
    install_distribution: Callable[..., Any],
) -> None:
    installed = install_distribution(
        entry_points={"broken": "fx_broken_{suffix}"},
        modules={"fx_broken_{suffix}": "raise RuntimeError('imported after all')\n"},
    )

    manager = make_plugin_manager(environ={"FXCORTEX_DISABLED_PLUGINS": "broken"})

    assert not manager.has_plugin("broken")
    assert manager.has_plugin("ecb")
    assert not set(installed.modules) & set(sys.modules)


def test_an_entry_point_with_a_bad_hook_signature_fails_fast_naming_it(
    install_distribution: Callable[..., Any],
) -> None:
    install_distribution(
        entry_points={"sloppy": "fx_sloppy_{suffix}"},
        modules={
            "fx_sloppy_{suffix}": """
                from fxcortex.core import hookimpl

                @hookimpl
                def fxcortex_batch_analyzed(changes, offset, rows_written):
                    pass
            """
        },
    )

    with pytest.raises(PluginError, match="invalid hook implementation") as caught:
        make_plugin_manager(environ=NO_ENV)

    assert caught.value.plugin == "sloppy"
