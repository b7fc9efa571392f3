"""Authorization: which role may use which model (glob patterns from the config)."""

from __future__ import annotations

from fnmatch import fnmatchcase

from authproxy.config.schema import ADMIN_ROLE, Role

__all__ = ["Policy"]


class Policy:
    def __init__(self, *, roles: dict[str, Role]) -> None:
        self._patterns = {name: tuple(role.models) for name, role in roles.items()}
        self._cache: dict[tuple[str, str], bool] = {}

    def is_admin(self, role: str) -> bool:
        return role == ADMIN_ROLE

    def knows_role(self, role: str) -> bool:
        return role in self._patterns

    def may_use(self, role: str, model: str) -> bool:
        key = (role, model)
        allowed = self._cache.get(key)
        if allowed is None:
            patterns = self._patterns.get(role, ())
            allowed = any(fnmatchcase(model, p) for p in patterns)
            if len(self._cache) < 100_000:
                self._cache[key] = allowed
        return allowed
