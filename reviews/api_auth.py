"""How /api/ knows who is calling: a bearer token from `manage.py create_api_token`."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from reviews.models import ApiToken


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = ApiToken.user_for(token)
        if user is not None:
            request.user = user
        return user
