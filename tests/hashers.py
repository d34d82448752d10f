"""A password hasher for tests."""

from __future__ import annotations

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """The site's PBKDF2 with one iteration. The iterations are part of the
    stored hash, so a password a test sets still signs in wherever the site
    runs (a server process a test starts verifies it with its own hasher),
    while each person a test makes no longer costs a third of a CPU second."""

    iterations = 1
