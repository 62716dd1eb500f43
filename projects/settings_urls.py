"""The organization's settings area: /settings/ (projects/settings_views.py)."""

from django.urls import path

from projects import settings_views as views

app_name = "settings"

urlpatterns = [
    path("", views.organization_settings, name="organization"),
    path("members/", views.members, name="members"),
    path("members/<int:pk>/role/", views.member_role, name="member-role"),
    path("members/<int:pk>/remove/", views.member_remove, name="member-remove"),
    path("invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation-revoke"),
    path("invitations/<int:pk>/resend/", views.invitation_resend, name="invitation-resend"),
    path("teams/", views.teams, name="teams"),
    path("teams/<int:pk>/", views.team_edit, name="team-edit"),
    path("teams/<int:pk>/delete/", views.team_delete, name="team-delete"),
    path("cost-centres/", views.cost_centres, name="cost-centres"),
    path("cost-centres/<int:pk>/", views.cost_centre_edit, name="cost-centre-edit"),
    path("cost-centres/<int:pk>/delete/", views.cost_centre_delete, name="cost-centre-delete"),
    path("service-tokens/", views.service_tokens, name="service-tokens"),
    path("service-tokens/<int:pk>/revoke/", views.service_token_revoke, name="service-token-revoke"),
]
