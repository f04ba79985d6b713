"""Who is asking: the verified caller that every statement runs as.

In:  produced by ``auth.py`` from request credentials (or by admin/CLI code).
Out: ``Identity`` — the PostgreSQL role to switch to and the claims that
     ``request.jwt.claims`` carries — consumed by the executor and by access checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["anon", "authenticated", "project_admin"]
ROLES: tuple[Role, ...] = ("anon", "authenticated", "project_admin")


@dataclass(frozen=True)
class Identity:
    role: Role  # the database role the request runs as (SET LOCAL ROLE)
    claims: Mapping[str, Any] = field(default_factory=dict)  # becomes request.jwt.claims (JSON)
    via: Literal["jwt", "api_key", "anon_key", "internal"] = "jwt"  # how the caller proved it

    @property
    def is_admin(self) -> bool:
        return self.role == "project_admin"

    @property
    def anonymous(self) -> bool:
        return self.role == "anon"


ADMIN = Identity("project_admin", {"role": "project_admin"}, via="internal")
ANON = Identity("anon", {"role": "anon"}, via="anon_key")
