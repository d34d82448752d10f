"""Static files with hashed, compressed names once collected."""

from __future__ import annotations

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFiles(CompressedManifestStaticFilesStorage):
    """After `collectstatic` (`make run` runs it): every file under a name
    with its content's hash and a gzipped copy beside it, served by whitenoise
    with a year's cache. Before it (a test server in a fresh directory): the
    files under their own names, which whitenoise serves from the apps and
    static/ directly, so nothing needs collecting to run."""

    manifest_strict = False

    def hashed_name(self, name, content=None, filename=None):
        try:
            return super().hashed_name(name, content, filename)
        except ValueError:
            if content is not None or filename is not None:
                raise  # collectstatic itself: a real error
            return name  # not collected: the plain name
