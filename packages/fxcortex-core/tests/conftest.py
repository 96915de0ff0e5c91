"""Fixtures of the core tests: minimal components and plugins, and throwaway distributions."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from fxcortex.core import (
    AnalyzerContext,
    FetchWindow,
    Quote,
    RateChange,
    Schedule,
    TableSpec,
    TableWrite,
    hookimpl,
)


@attrs.define
class FakeSource:
    """The smallest object that satisfies the `Source` protocol."""

    name: str
    description: str = "a source for tests"
    schedule: Schedule = Schedule(cron="0 16 * * 1-5")
    currencies: tuple[str, ...] = ()
    history_since: date | None = None
    observation_interval: timedelta = timedelta(days=1)

    def fetch(self, window: FetchWindow) -> Iterable[Quote]:
        return []

    def configure(self, **options: str) -> FakeSource:
        return self


@attrs.define
class FakeTransform:
    """The smallest object that satisfies the `Transform` protocol."""

    name: str
    description: str = "a transform for tests"

    def apply(self, quotes: Sequence[Quote]) -> Sequence[Quote]:
        return quotes


@attrs.define
class FakeAnalyzer:
    """The smallest object that satisfies the `Analyzer` protocol."""

    name: str
    description: str = "an analyzer for tests"
    tables: Sequence[TableSpec] = ()

    def process(self, changes: Sequence[RateChange], context: AnalyzerContext) -> list[TableWrite]:
        return []


@attrs.define(eq=False)  # identity: pluggy refuses a plugin equal to one already registered
class ComponentPlugin:
    """A plugin object whose register hooks hand over the components it was built with."""

    sources: Sequence[Any] = ()
    transforms: Sequence[Any] = ()
    analyzers: Sequence[Any] = ()

    @hookimpl
    def fxcortex_register_sources(self, register: Callable[[Any], None]) -> None:
        for source in self.sources:
            register(source)

    @hookimpl
    def fxcortex_register_transforms(self, register: Callable[[Any], None]) -> None:
        for transform in self.transforms:
            register(transform)

    @hookimpl
    def fxcortex_register_analyzers(self, register: Callable[[Any], None]) -> None:
        for analyzer in self.analyzers:
            register(analyzer)


@attrs.frozen
class Components:
    """The fake component and plugin classes, handed to tests through the `components` fixture."""

    source: type[FakeSource] = FakeSource
    transform: type[FakeTransform] = FakeTransform
    analyzer: type[FakeAnalyzer] = FakeAnalyzer
    plugin: type[ComponentPlugin] = ComponentPlugin


@pytest.fixture(scope="session")
def components() -> Components:
    """Fake sources, transforms, analyzers and a plugin class that registers them."""
    return Components()


@attrs.frozen
class Distribution:
    """A distribution installed for one test: its name, version and its importable modules."""

    name: str
    version: str
    modules: dict[str, str]


@pytest.fixture
def install_distribution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Distribution]]:
    """``install(entry_points={name: module}, modules={module: source})``: a throwaway distribution.

    Writes a ``*.dist-info`` folder with an ``entry_points.txt`` for the ``fxcortex`` group, and the
    modules as files beside it, into a folder put first on ``sys.path``, where importlib.metadata
    finds it. Module names get a unique suffix (``{suffix}`` in names and sources) so nothing leaks
    between tests through ``sys.modules``.
    """
    installed: list[str] = []

    def install(
        entry_points: dict[str, str], modules: dict[str, str] | None = None, version: str = "1.2.3"
    ) -> Distribution:
        suffix = uuid.uuid4().hex[:8]
        folder = tmp_path / f"site-{suffix}"
        folder.mkdir()
        name = f"fxcortex-throwaway-{suffix}"
        info = folder / f"fxcortex_throwaway_{suffix}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
        )
        lines = [f"{ep} = {target.format(suffix=suffix)}" for ep, target in entry_points.items()]
        (info / "entry_points.txt").write_text(
            "[fxcortex]\n" + "\n".join(lines) + "\n", encoding="utf-8"
        )
        written: dict[str, str] = {}
        for module, source in (modules or {}).items():
            module_name = module.format(suffix=suffix)
            (folder / f"{module_name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            written[module_name] = source
            installed.append(module_name)
        monkeypatch.syspath_prepend(str(folder))
        return Distribution(name=name, version=version, modules=written)

    yield install
    for module_name in installed:
        sys.modules.pop(module_name, None)
