from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from ops import gates  # noqa: F401  registers the budget, infrastructure, risk and metric gates
