from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Register what lower apps need from ops: its stage gates, list figures, project-page panels,
        # activity sentences, /metrics gauges and the reconversion of amounts when the currency changes.
        from ops import activity, figures, gates, metrics, panels  # noqa: F401
        from ops.services.fx import organization_costs_reconvert
        from projects.hooks import on_currency_changed

        on_currency_changed(organization_costs_reconvert)
