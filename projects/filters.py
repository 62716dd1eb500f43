"""The activity feed's filters: by person, kind of change and dates (the organization's days)."""

import datetime as dt

import django_filters

from projects.activity import ActivityKind
from projects.forms import DateInput, members_of
from projects.models import AuditEvent, Organization


class ActivityFilter(django_filters.FilterSet):
    person = django_filters.ModelChoiceFilter(field_name="actor", queryset=None, empty_label="Anyone", label="Person")
    kind = django_filters.ChoiceFilter(
        field_name="object_type", choices=ActivityKind.choices, empty_label="Any kind", label="Kind"
    )
    since = django_filters.DateFilter(method="from_day", label="From", widget=DateInput)
    until = django_filters.DateFilter(method="to_day", label="To", widget=DateInput)

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def __init__(self, *args, organization: Organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.filters["person"].queryset = members_of(organization)

    def _start(self, day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time.min, tzinfo=self.organization.tzinfo)

    def from_day(self, queryset, name, value):
        return queryset.filter(at__gte=self._start(value))

    def to_day(self, queryset, name, value):
        return queryset.filter(at__lt=self._start(value + dt.timedelta(days=1)))
