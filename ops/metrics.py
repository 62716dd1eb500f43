"""The database gauges of `/metrics`: reports by kind and state, open risks by severity (registered in ready())."""

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from ops.models import Report, ReportKind, ReportState, Risk, RiskStatus, Severity
from tracker.metrics import database_collector_register


@database_collector_register
class DatabaseCollector:
    """Report counts by kind and state, and open risks by severity, read from the database at scrape time."""

    def collect(self) -> Iterator[Metric]:
        reports = GaugeMetricFamily("tracker_reports", "Reports by kind and state.", labels=["kind", "state"])
        counts = {
            (row["kind"], row["state"]): row["n"]
            for row in Report.objects.values("kind", "state").annotate(n=Count("id")).order_by()
        }
        for kind in ReportKind.values:
            for state in ReportState.values:
                reports.add_metric([kind, state], counts.get((kind, state), 0))
        yield reports

        risks = GaugeMetricFamily(
            "tracker_open_risks", "Risks still needing work (open or mitigating), by severity.", labels=["severity"]
        )
        counts = dict(
            Risk.objects.filter(status__in=RiskStatus.active())
            .values("severity")
            .annotate(n=Count("id"))
            .order_by()
            .values_list("severity", "n")
        )
        for severity in Severity.values:
            risks.add_metric([severity], counts.get(severity, 0))
        yield risks
