"""Issue an API token for a user; the key is printed once."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from reviews.models import ApiToken


class Command(BaseCommand):
    help = "Create a bearer token for the JSON API (printed once; only its hash is kept)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="script", help="what the token is for")

    def handle(self, *args, username: str, name: str, **options) -> None:
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        _, key = ApiToken.issue(user, name)
        self.stdout.write(key)
