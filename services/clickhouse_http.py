#!/usr/bin/env python3
"""A ClickHouse HTTP server without Docker: the `chdb-core` wheel's clickhouse-local, listening.

No package this machine can install ships the ``clickhouse-server`` program (Debian's is 18.16,
without DateTime64 or ``ReplacingMergeTree(version, is_deleted)``), but the ``chdb-core`` wheel
(26.9) carries the whole ClickHouse engine, and its clickhouse-local runs ClickHouse's own HTTP
handler after ``SYSTEM START LISTEN HTTP``. This script does that, then keeps the statement alive
with a sleeping query, so the process serves the ClickHouse HTTP protocol (what
``clickhouse-connect`` speaks) on ``HOST:PORT`` until it is killed, with its tables under
``DATA_DIR`` (kept across restarts).

    python services/clickhouse_http.py DATA_DIR PORT [HOST]

Differences from ``clickhouse-server`` that matter here: one user, ``default``, without a
password (so it listens on loopback only by default), no TCP native port, no interserver port.

Two details of chDB's packaging decide how it is loaded:

- ``import chdb`` starts chDB's embedded engine, after which clickhouse-local cannot start in the
  same process ("EventNotifier is initialized twice"), so the extension module is loaded by path
  without running the package's ``__init__``;
- clickhouse-local reads ``config.xml`` from its working directory: the listen host and HTTP port
  go there. The statement's output format becomes the HTTP default, and ``TabSeparated`` is what
  clients expect when they ask for the server's version.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path

RTLD_DEEPBIND = 0x8  # chDB loads its engine this way: its symbols before any already loaded
KEEP_LISTENING = (
    "SYSTEM START LISTEN HTTP; "
    # one row a second for about 31 years; sum() keeps the sleep from being optimised away
    "SELECT sum(sleepEachRow(1)) FROM numbers(1000000000) SETTINGS max_block_size = 1"
)


def engine_module() -> object:
    """chDB's extension module, loaded without ``chdb/__init__.py``."""
    spec = importlib.util.find_spec("chdb")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise SystemExit("chdb is not installed: pip install chdb")
    library = Path(spec.origin).parent / "_chdb.abi3.so"
    ctypes.CDLL(str(library), mode=sys.getdlopenflags() | RTLD_DEEPBIND)
    loader = importlib.machinery.ExtensionFileLoader("chdb._chdb", str(library))
    module_spec = importlib.util.spec_from_file_location("chdb._chdb", library, loader=loader)
    assert module_spec is not None
    module = importlib.util.module_from_spec(module_spec)
    loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    data = Path(argv[0]).resolve()
    port, host = int(argv[1]), argv[2] if len(argv) == 3 else "127.0.0.1"
    run = data / ".run"
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.xml").write_text(
        f"<clickhouse><listen_host>{host}</listen_host><http_port>{port}</http_port></clickhouse>\n"
    )
    engine = engine_module()
    os.chdir(run)
    print(f"clickhouse-local (chdb-core) serving HTTP on {host}:{port}, data in {data}", flush=True)
    result = engine.query(KEEP_LISTENING, "TabSeparated", path=str(data))  # type: ignore[attr-defined]
    error = getattr(result, "error_message", lambda: "")()
    print(f"the listening statement ended: {error or result}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
