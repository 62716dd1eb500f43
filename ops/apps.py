from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Register what lower apps need from ops: its stage gates, its /metrics gauges.
        from ops import gates, metrics  # noqa: F401
