"""Query-string filters of the projects resources."""

import django_filters as filters

from projects.models import (
    ApiToken,
    AuditEvent,
    CostCentre,
    Invitation,
    Membership,
    Project,
    StageTransition,
    StatusUpdate,
    Team,
)
from tracker.api import DateTimeFilter, IdFilter, StrictFilterSet, SyncFilterSet


# Foreign keys filter by plain id, so an id of another organization matches nothing rather than
# answering differently from an id that does not exist.
def id_filter(field: str) -> IdFilter:
    return IdFilter(field_name=f"{field}_id")


class ProjectFilter(SyncFilterSet):
    organization = id_filter("organization")
    team = id_filter("team")
    cost_centre = id_filter("cost_centre")
    start_date_after = filters.DateFilter(field_name="start_date", lookup_expr="gte")
    start_date_before = filters.DateFilter(field_name="start_date", lookup_expr="lte")
    target_date_after = filters.DateFilter(field_name="target_date", lookup_expr="gte")
    target_date_before = filters.DateFilter(field_name="target_date", lookup_expr="lte")

    class Meta:
        model = Project
        fields = [
            "organization",
            "team",
            "cost_centre",
            "stage",
            "health",
            "industry",
            "use_case",
            "data_classification",
            "ai_act_tier",
            "archived",
        ]


class StatusUpdateFilter(SyncFilterSet):
    project = id_filter("project")
    date_after = filters.DateFilter(field_name="date", lookup_expr="gte")
    date_before = filters.DateFilter(field_name="date", lookup_expr="lte")

    class Meta:
        model = StatusUpdate
        fields = ["project", "health"]


class StageTransitionFilter(SyncFilterSet):
    project = id_filter("project")
    created_after = DateTimeFilter(field_name="at", lookup_expr="gte")

    class Meta:
        model = StageTransition
        fields = ["project", "from_stage", "to_stage"]


class TeamFilter(SyncFilterSet):
    organization = id_filter("organization")

    class Meta:
        model = Team
        fields = ["organization"]


class CostCentreFilter(SyncFilterSet):
    organization = id_filter("organization")
    owner = id_filter("owner")

    class Meta:
        model = CostCentre
        fields = ["organization", "owner"]


class MembershipFilter(SyncFilterSet):
    organization = id_filter("organization")

    class Meta:
        model = Membership
        fields = ["organization", "role"]


class ServiceTokenFilter(SyncFilterSet):
    organization = id_filter("organization")

    class Meta:
        model = ApiToken
        fields = ["organization", "scope"]


class InvitationFilter(SyncFilterSet):
    organization = id_filter("organization")

    class Meta:
        model = Invitation
        fields = ["organization", "role"]


class AuditEventFilter(StrictFilterSet):
    organization = id_filter("organization")
    project = id_filter("project")
    at_after = DateTimeFilter(field_name="at", lookup_expr="gte")
    at_before = DateTimeFilter(field_name="at", lookup_expr="lte")
    object_type = filters.CharFilter(help_text="app_label.model, e.g. ops.risk")

    class Meta:
        model = AuditEvent
        fields = ["organization", "project", "object_type", "object_id", "action"]
