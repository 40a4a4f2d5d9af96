"""From a verified token's claims to the caller's roles: which Keycloak roles count, and what each
one allows in mlbus.

Keycloak puts realm roles in `realm_access.roles` and each client's roles in
`resource_access.<client>.roles`; a realm may also map roles into a plain `roles` claim (Snap4City's
clients do). Realm roles and the plain claim always count. Client roles count only for the clients
named in the settings: any client's administrator can define client roles, and a client role
named `RootAdmin` on an unrelated client must not make anyone an mlbus admin.

The mapping is configuration; the default is Snap4City's: RootAdmin and ToolAdmin are admins,
AreaManager is an operator (sees all notifications and resource state), Manager is a user. Every
verified caller is at least a user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ADMIN, OPERATOR, USER = "admin", "operator", "user"
Grant = Literal["admin", "operator", "user"]

#: Snap4City's roles and what each allows in mlbus.
SNAP4CITY_ROLES: dict[str, Grant] = {
    "RootAdmin": "admin",
    "ToolAdmin": "admin",
    "AreaManager": "operator",
    "Manager": "user",
}
#: Clients whose client roles count by default: the API's own client (the audience), the
#: Node-RED client that Snap4City's nodes use, and the console (services/console), whose tokens
#: carry the signed-in person's roles.
ROLE_CLIENTS = ("mlbus", "nodered-iotedge", "mlbus-console")


@dataclass(frozen=True)
class RoleMap:
    """Which token roles count, and the mlbus roles (admin, operator, user) they grant."""

    grants: Mapping[str, str]
    clients: frozenset[str]

    @classmethod
    def of(
        cls,
        grants: Mapping[str, str] | None = None,
        clients: Iterable[str] | None = None,
        extra_admin_roles: Iterable[str] = (),
    ) -> RoleMap:
        """A map from settings; `extra_admin_roles` keeps the older `admin_roles` setting
        working (those roles grant admin too)."""
        merged = dict(SNAP4CITY_ROLES if grants is None else grants)
        merged.update(dict.fromkeys(extra_admin_roles, ADMIN))
        return cls(merged, frozenset(ROLE_CLIENTS if clients is None else clients))

    def token_roles(self, claims: Mapping[str, Any]) -> frozenset[str]:
        """The roles of the token that count: realm roles, the `roles` claim, the named
        clients' roles. Malformed role claims count for nothing.

        Only in tokens issued to one of the named clients (`azp`): the administrator of any
        other client can put whatever claims its tokens carry (a hardcoded-claim mapper writing
        `realm_access.roles: [RootAdmin]`), so such a token is a plain user's."""
        azp = claims.get("azp")
        if azp is not None and azp not in self.clients:
            return frozenset()
        found = set(_strings(_get(claims.get("realm_access"), "roles")))
        found.update(_strings(claims.get("roles")))
        access = claims.get("resource_access")
        if isinstance(access, Mapping):
            for client in self.clients:
                found.update(_strings(_get(access.get(client), "roles")))
        return frozenset(found)

    def grants_of(self, roles: Iterable[str]) -> frozenset[str]:
        """The mlbus roles that `roles` grant; always at least `user`."""
        return frozenset({USER, *(self.grants[r] for r in roles if r in self.grants)})


def _get(value: object, key: str) -> object:
    return value.get(key) if isinstance(value, Mapping) else None


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str)]
