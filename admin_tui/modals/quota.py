"""A user's limits: a number, `unlimited`, or blank for the role's value."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Input

from admin_tui import formatting as fmt
from admin_tui.modals.form import FormModal
from authproxy.admin.service import QUOTA_FIELDS
from authproxy.limits.quota import Limits
from authproxy.store.records import UNLIMITED, QuotaOverride
from authproxy.text import whole_number

__all__ = ["LABELS", "QuotaChanges", "QuotaModal", "parse_quota"]

LABELS = {
    "requests_per_minute": "Requests/min",
    "max_concurrent": "Concurrent",
    "tokens_per_day": "Tokens/day",
    "tokens_per_month": "Tokens/month",
}
assert set(LABELS) == set(QUOTA_FIELDS)

QuotaChanges = dict[str, int | None]


def parse_quota(label: str, text: str) -> int | None:
    """``""``/``role`` -> None (the role's value), ``unlimited`` -> UNLIMITED, digits -> N."""
    text = text.strip().lower().replace(",", "").replace("_", "")
    if text in ("", "role"):
        return None
    if text in ("unlimited", "none", "∞"):
        return UNLIMITED
    value = whole_number(text)
    if value is None:
        raise ValueError(f"{label}: want a number, `unlimited`, or blank for the role's value")
    return value


class QuotaModal(FormModal[QuotaChanges]):
    SUBMIT = "Set"

    def __init__(
        self, user: str, role: str, current: QuotaOverride | None, defaults: Limits
    ) -> None:
        super().__init__()
        self.user = user
        self.role = role
        self.current = current or QuotaOverride(user_id=0)
        self.defaults = defaults

    def heading(self) -> str:
        return f"Limits of {self.user}"

    def compose_fields(self) -> ComposeResult:
        yield self.hint(f"Blank: the {self.role} role's value (shown greyed).")
        for name in QUOTA_FIELDS:
            yield self.field(
                LABELS[name],
                Input(
                    value=fmt.override(getattr(self.current, name)),
                    placeholder=f"{fmt.limit(getattr(self.defaults, name))} (role)",
                    id=name,
                ),
            )

    def result(self) -> QuotaChanges:
        changes: QuotaChanges = {}
        for name in QUOTA_FIELDS:
            value = parse_quota(LABELS[name], self.query_one(f"#{name}", Input).value)
            if value != getattr(self.current, name):
                changes[name] = value
        return changes
