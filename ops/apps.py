from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Register what lower apps need from ops: its stage gates, list figures, project-page panels, /metrics
        # gauges, the amounts that fix an organization's currency.
        from ops import currency, figures, gates, metrics, panels  # noqa: F401
