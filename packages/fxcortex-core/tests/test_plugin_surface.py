"""Keep the plugin surface honest: every hookspec is documented and exercised by some test."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from fxcortex.core import hookspecs

REPO = Path(__file__).resolve().parents[3]
THIS_FILE = Path(__file__).resolve()


def hookspec_names() -> list[str]:
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return sorted(
        name
        for name, value in vars(hookspecs).items()
        if name.startswith("fxcortex_") and inspect.isfunction(value) and hasattr(value, marker)
    )


def test_the_hookspecs_are_found() -> None:
    # Guards the two tests below against passing vacuously.
    assert {"fxcortex_register_sources", "fxcortex_register_analyzers"} <= set(hookspec_names())


@pytest.mark.parametrize("hook", hookspec_names())
def test_every_hookspec_is_documented_in_the_readme(hook: str) -> None:
    readme = REPO / "README.md"

    assert readme.is_file(), f"{readme} is missing; it must document the hook {hook}"
    assert hook in readme.read_text(encoding="utf-8"), f"README.md does not mention {hook}"


@pytest.mark.parametrize("hook", hookspec_names())
def test_every_hookspec_is_exercised_by_some_test(hook: str) -> None:
    test_files = [
        path
        for path in sorted(REPO.glob("packages/*/tests/**/*.py"))
        if path.resolve() != THIS_FILE
    ]

    assert test_files
    assert any(hook in path.read_text(encoding="utf-8") for path in test_files), (
        f"no test under packages/*/tests mentions {hook}"
    )
