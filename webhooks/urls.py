from django.urls import path

from webhooks import views

app_name = "webhooks"
urlpatterns = [
    path("webhooks/", views.endpoints, name="endpoints"),
    path("webhooks/<int:pk>/", views.endpoint_detail, name="endpoint-detail"),
    path("webhooks/<int:pk>/<str:change>/", views.endpoint_change, name="endpoint-change"),
    path("webhooks/<int:pk>/deliveries/<int:delivery_id>/redeliver/", views.redeliver, name="redeliver"),
]
