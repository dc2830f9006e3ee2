"""API token roles, importable without aiohttp (the CLI offers them as choices).

    agent   may POST reports
    reader  may GET queries
    admin   may do everything
"""

from __future__ import annotations

ROLES: tuple[str, ...] = ("agent", "reader", "admin")
ADMIN = "admin"
