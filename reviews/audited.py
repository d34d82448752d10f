"""How the audit trail tells the things that say who may do what: users
(their groups, flags and permissions), groups, API keys, review rules and
webhook endpoints. Admin and the management commands that change them
write their rows here: no person's action on a review, so no action
(reviews.actions) writes them."""

from __future__ import annotations

import hashlib
from typing import Any

from reviews.emit import emit
from reviews.models import ApiToken, ReviewRule
from reviews.webhook_models import WebhookEndpoint


def _when(moment) -> str | None:
    return moment.isoformat() if moment else None


def _permissions(permissions) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions.all())


def user_summary(user) -> dict[str, Any]:
    return {
        "username": user.get_username(),
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "permissions": _permissions(user.user_permissions),
    }


def group_summary(group) -> dict[str, Any]:
    return {
        "name": group.name,
        "members": sorted(u.get_username() for u in group.user_set.all()),
        "permissions": _permissions(group.permissions),
    }


def token_summary(token: ApiToken) -> dict[str, Any]:
    return {
        "name": token.name,
        "user": token.user.get_username(),
        "prefix": token.prefix,
        "expires_at": _when(token.expires_at),
        "revoked_at": _when(token.revoked_at),
    }


def rule_summary(rule: ReviewRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "order": rule.order,
        "graph": rule.graph_name,
        "tool": rule.tool_name,
        "condition": rule.condition,
        "view": sorted(g.name for g in rule.view_groups.all()),
        "review": sorted(g.name for g in rule.review_groups.all()),
        "administer": sorted(g.name for g in rule.admin_groups.all()),
    }


def webhook_summary(endpoint: WebhookEndpoint) -> dict[str, Any]:
    # The secret never enters the trail; its fingerprint tells a change.
    secret = hashlib.sha256(endpoint.secret.encode()).hexdigest()[:8]
    return {
        "name": endpoint.name,
        "url": endpoint.url,
        "events": endpoint.events,
        "active": endpoint.active,
        "secret": f"sha256:{secret}",
    }


def changed(
    action: str, before: dict | None, after: dict | None, *, actor: Any = None, **fields
) -> None:
    """A change to one of them, made in admin (`actor` the admin user) or by
    a management command (the system)."""
    emit(action, actor=actor, before=before, after=after, **fields)
