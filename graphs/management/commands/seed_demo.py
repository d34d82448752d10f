"""Demo accounts and a check that every registered graph compiles."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from graphs.checkpoint import DjangoCheckpointSaver
from graphs.registry import GraphLoadError, get_registry

DEMO_USERS = [
    # username, password, is_staff/superuser, what they are for
    ("reviewer", "review-demo-1", False, "reviews tasks"),
    ("reviewer2", "review-demo-2", False, "a second reviewer, for claims and quorum"),
    ("admin", "admin-demo-1", True, "administers rules and sees everything"),
]


class Command(BaseCommand):
    help = "Create the demo reviewer accounts and check that the registered graphs load."

    def handle(self, *args, **options) -> None:
        User = get_user_model()
        self.stdout.write("Demo logins (change or delete them before real use):")
        for username, password, is_admin, role in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.is_staff = user.is_superuser = is_admin
                user.save()
            note = "" if created else " (already existed, password unchanged)"
            self.stdout.write(f"  {username:<10} / {password:<14} {role}{note}")

        registry = get_registry()
        for error in registry.errors:
            raise CommandError(error)
        saver = DjangoCheckpointSaver()
        self.stdout.write(f"Graphs from {registry.config_path}:")
        for spec in registry.specs():
            try:
                compiled = spec.compile(saver)
            except GraphLoadError as exc:
                raise CommandError(str(exc)) from exc
            nodes = ", ".join(n for n in compiled.get_graph().nodes if not n.startswith("__"))
            self.stdout.write(f"  {spec.name:<12} nodes: {nodes}")
