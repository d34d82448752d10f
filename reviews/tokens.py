"""Bearer tokens for scripts and other systems."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connections, models, router
from django.utils import timezone

from hitl_site.rows import Rows


class ApiToken(models.Model):
    """A bearer token for scripts and other systems; only its hash is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=8, editable=False)  # to tell tokens apart
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # None: the token works until it is revoked.
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…, {self.user})"

    @staticmethod
    def _hash(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @classmethod
    def issue(
        cls, user: Any, name: str, *, expires_in: timedelta | None = None
    ) -> tuple[ApiToken, str]:
        """A new token; the plain key is returned once and never stored."""
        key = secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user,
            name=name,
            key_hash=cls._hash(key),
            prefix=key[:8],
            expires_at=timezone.now() + expires_in if expires_in is not None else None,
        )
        return token, key

    @classmethod
    def user_for(cls, key: str) -> Any:
        """The active user a key belongs to, or None (revoked or expired key)."""
        now = timezone.now()
        token = cls._with_user(cls._hash(key))
        if (
            token is None
            or token.revoked_at is not None
            or not token.user.is_active
            or (token.expires_at is not None and token.expires_at <= now)
        ):
            return None
        # At most one write a minute per token, not one per request: on SQLite
        # even an UPDATE that changes nothing waits for the writer's lock.
        stale = now - timedelta(minutes=1)
        if token.last_used_at is None or token.last_used_at < stale:
            cls.objects.filter(pk=token.pk).filter(
                models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=stale)
            ).update(last_used_at=now)
        return token.user

    @classmethod
    def _with_user(cls, key_hash: str) -> ApiToken | None:
        """The token of this hash with its user, in one statement written once:
        asked on every request with a key, where building the query through
        the ORM cost more than running it."""
        using = router.db_for_read(cls)
        connection = connections[using]
        user_model = get_user_model()
        token_rows, user_rows = _ROWS.get(user_model) or _ROWS.setdefault(
            user_model, (Rows(cls), Rows(user_model))
        )
        quote = connection.ops.quote_name
        users, tokens = quote(user_model._meta.db_table), quote(cls._meta.db_table)
        user_id = quote(cls._meta.get_field("user").column)
        hashed = quote(cls._meta.get_field("key_hash").column)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {token_rows.columns(using)}, {user_rows.columns(using)}"
                f" FROM {tokens} INNER JOIN {users}"
                f" ON {users}.{quote(user_model._meta.pk.column)} = {tokens}.{user_id}"
                f" WHERE {tokens}.{hashed} = %s",
                [key_hash],
            )
            row = cursor.fetchone()
        if row is None:
            return None
        split = len(token_rows.fields)
        token = token_rows.make(using, row[:split])
        token.user = user_rows.make(using, row[split:])
        return token


# How a token's row and its user's are read, made once the user model is known.
_ROWS: dict[type, tuple[Rows, Rows]] = {}
