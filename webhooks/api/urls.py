from rest_framework.routers import DefaultRouter

from webhooks.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("webhook-endpoints", views.WebhookEndpointViewSet, basename="webhook-endpoint")

app_name = "api-webhooks"
urlpatterns = router.urls
