"""The agent id: a uuid4 created on first run and kept in `<state_dir>/agent_id`.

It names this agent installation (a reinstall gets a new one; reconcile then matches the
machine by its hardware identifiers). The file is owner-only, written atomically, and never
silently replaced: a damaged file is an error to look at, not a reason to become a new agent.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

AGENT_ID_FILE = "agent_id"


class AgentIdError(RuntimeError):
    """The stored agent id cannot be read or is not a UUID."""


def _parse_agent_id(text: str, path: Path) -> str:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise AgentIdError(
            f"{path} does not hold a UUID; restore it from a backup, or delete it to register "
            "this machine as a new agent") from None


def load_agent_id(state_dir: Path) -> str | None:
    """The stored agent id, or None before the first run."""
    path = Path(state_dir) / AGENT_ID_FILE
    try:
        return _parse_agent_id(path.read_text(encoding="ascii", errors="replace"), path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AgentIdError(f"cannot read {path}: {exc.strerror or exc}") from None


def load_or_create_agent_id(state_dir: Path) -> str:
    """The agent id, created (uuid4, mode 0600, directory 0700) when there is none yet."""
    state_dir = Path(state_dir)
    existing = load_agent_id(state_dir)
    if existing is not None:
        return existing
    if not state_dir.exists():
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(state_dir, 0o700)  # mkdir's mode is filtered by the umask
    new_id = str(uuid.uuid4())
    path = state_dir / AGENT_ID_FILE
    tmp = state_dir / f".{AGENT_ID_FILE}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(new_id + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # fails if another process created it first: then use theirs
        except FileExistsError:
            return load_agent_id(state_dir) or new_id
    finally:
        tmp.unlink(missing_ok=True)
    return new_id
