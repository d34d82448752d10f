"""Issue an API token for a user; the key is printed once."""

import re
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from reviews.audited import changed, token_summary
from reviews.models import ApiToken

UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> timedelta:
    """`30d`, `12h`, `2w`, `90m`: how long a token lasts."""
    match = re.fullmatch(r"\s*(\d+)\s*([mhdw])\s*", text)
    if match is None or int(match[1]) == 0:
        raise ValueError(f"{text!r} is not a duration: a positive number then m, h, d or w (30d)")
    return timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = "Create a bearer token for the JSON API (printed once; only its hash is kept)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="script", help="what the token is for")
        parser.add_argument(
            "--expires-in",
            metavar="DURATION",
            help="refuse the token after this long: 90m, 12h, 30d, 2w (default: never)",
        )

    def handle(self, *args, username: str, name: str, expires_in: str | None, **options) -> None:
        try:
            lasts = duration(expires_in) if expires_in is not None else None
        except ValueError as exc:
            raise CommandError(f"--expires-in: {exc}") from None
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        with transaction.atomic():
            token, key = ApiToken.issue(user, name, expires_in=lasts)
            changed("token.changed", None, token_summary(token))
        # The key alone on stdout, for scripts; the rest for the person.
        self.stdout.write(key)
        if token.expires_at is not None:
            self.stderr.write(f"It expires at {token.expires_at:%Y-%m-%d %H:%M:%S %Z}.")
