"""Store backends, opened by URL: `open_store("sqlite:///var/lib/fleetgraph/cmdb.sqlite")`."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cmdb.store import Store

_PLANNED = ("neo4j", "neo4j+s", "neo4j+ssc", "bolt", "bolt+s", "bolt+ssc", "falkordb", "redis")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def open_store(url: str) -> Store:
    """Open the store a URL names.

    - `sqlite:///abs/path.sqlite`: an absolute path;
    - `sqlite:relative/path.sqlite`: a path relative to the working directory;
    - a bare path (`/var/lib/fleetgraph/cmdb.sqlite`, `data/cmdb.sqlite`): SQLite.
    """
    from cmdb.backends.sqlite import SQLiteStore

    match = _SCHEME.match(url)
    if match is None or len(match[1]) == 1:  # no scheme, or a Windows drive letter
        return SQLiteStore(Path(url))
    scheme = match[1].lower()
    if scheme == "sqlite":
        return SQLiteStore(_sqlite_path(url))
    if scheme in _PLANNED:
        raise ValueError(f"store URL {url!r}: the graph-server backend (neo4j://, bolt://, FalkorDB) is "
                         "planned but not available yet; use sqlite:///path/to/cmdb.sqlite")
    raise ValueError(f"store URL {url!r}: unknown scheme {scheme!r}; use sqlite:///abs/path.sqlite, "
                     "sqlite:relative/path.sqlite or a bare path (a neo4j:// backend is planned)")


def store_file(url: str) -> Path | None:
    """The database file a store URL names (SQLite), or None for a server-backed store."""
    match = _SCHEME.match(url)
    if match is None or len(match[1]) == 1:
        return Path(url)
    return _sqlite_path(url) if match[1].lower() == "sqlite" else None


def sqlite_url(path: str | Path) -> str:
    """The store URL of a SQLite file: sqlite:///abs/path (three slashes, then the absolute path)."""
    return "sqlite:///" + str(Path(path).resolve()).lstrip("/")


def _sqlite_path(url: str) -> Path:
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError(f"store URL {url!r}: SQLite URLs take no ?options or #fragment")
    if parts.netloc:
        raise ValueError(f"store URL {url!r}: a SQLite URL names a file, not a host; "
                         "write sqlite:///abs/path.sqlite (three slashes) or sqlite:relative/path")
    path = unquote(parts.path)
    if not path or path == ":memory:":
        raise ValueError(f"store URL {url!r}: name a database file, e.g. sqlite:///var/lib/fleetgraph/cmdb.sqlite")
    return Path(path)
