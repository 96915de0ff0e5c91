"""Settings from the environment.

=========================  ================================================================
variable                   meaning (default)
=========================  ================================================================
``FXCORTEX_PROFILE``       ``embedded`` (default): no servers, everything under the home
``FXCORTEX_HOME``          where the embedded profile keeps its files
                           (``$XDG_DATA_HOME/fxcortex``, else ``~/.local/share/fxcortex``)
``FXCORTEX_BATCH_SIZE``    changes per analyzer batch (50000)
=========================  ================================================================

Plugins read ``FXCORTEX_DISABLED_PLUGINS`` and ``FXCORTEX_TRACE_PLUGINS`` (see
`fxcortex.core.plugins`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import attrs

from fxcortex.core import FxCortexError

Profile = Literal["embedded", "distributed"]
PROFILES: tuple[Profile, ...] = ("embedded", "distributed")


class ConfigError(FxCortexError):
    """A setting is missing or malformed; the message names the variable."""


def default_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_DATA_HOME/fxcortex``, else ``~/.local/share/fxcortex``."""
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "fxcortex"


@attrs.frozen(kw_only=True)
class Settings:
    """Everything the runtime needs to build a pipeline."""

    profile: Profile = "embedded"
    home: Path = attrs.field(factory=default_home, converter=Path)
    batch_size: int = 50_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read the ``FXCORTEX_*`` variables, naming any that is malformed."""
        profile = environ.get("FXCORTEX_PROFILE", "embedded")
        if profile not in PROFILES:
            raise ConfigError(f"FXCORTEX_PROFILE={profile!r}: choose one of {', '.join(PROFILES)}")
        raw_batch = environ.get("FXCORTEX_BATCH_SIZE", "50000")
        try:
            batch_size = int(raw_batch)
        except ValueError:
            raise ConfigError(f"FXCORTEX_BATCH_SIZE={raw_batch!r} is not a whole number") from None
        if batch_size < 1:
            raise ConfigError(f"FXCORTEX_BATCH_SIZE={batch_size} must be at least 1")
        home = environ.get("FXCORTEX_HOME")
        return cls(
            profile=profile,  # checked against PROFILES above
            home=Path(home).expanduser() if home else default_home(environ),
            batch_size=batch_size,
        )

    @property
    def rates_path(self) -> Path:
        """The embedded SQLite file: rates, change log, checkpoints and cache."""
        return self.home / "rates.sqlite"

    @property
    def analytics_path(self) -> Path:
        """The embedded chDB data folder."""
        return self.home / "analytics"
