from rest_framework.routers import DefaultRouter

from projects.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
# JSON is the only format: `.json` suffix routes would only add URLs (and break @action signatures).
router.include_format_suffixes = False
router.register("organizations", views.OrganizationViewSet, basename="organization")
router.register("teams", views.TeamViewSet, basename="team")
router.register("cost-centres", views.CostCentreViewSet, basename="cost-centre")
router.register("memberships", views.MembershipViewSet, basename="membership")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("projects", views.ProjectViewSet, basename="project")
router.register("status-updates", views.StatusUpdateViewSet, basename="status-update")
router.register("stage-transitions", views.StageTransitionViewSet, basename="stage-transition")
router.register("auth/tokens", views.ApiTokenViewSet, basename="api-token")
router.register("service-tokens", views.ServiceTokenViewSet, basename="service-token")
router.register("events", views.AuditEventViewSet, basename="event")

app_name = "api-projects"
urlpatterns = router.urls
