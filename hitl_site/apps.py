from django.apps import AppConfig


class HitlSiteConfig(AppConfig):
    name = "hitl_site"
    verbose_name = "Site"

    def ready(self) -> None:
        from hitl_site import checks  # noqa: F401  (registers the checks)
