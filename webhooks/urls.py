from django.urls import path

from webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.EndpointListView.as_view(), name="list"),
    path("neu/", views.EndpointCreateView.as_view(), name="create"),
    path("<int:pk>/", views.EndpointDetailView.as_view(), name="detail"),
    path("<int:pk>/bearbeiten/", views.EndpointEditView.as_view(), name="edit"),
    path("<int:pk>/<slug:action>/", views.EndpointActionView.as_view(), name="action"),
    path("zustellungen/<uuid:pk>/", views.DeliveryDetailView.as_view(), name="delivery"),
    path(
        "zustellungen/<uuid:pk>/erneut-senden/",
        views.DeliveryRedeliverView.as_view(),
        name="redeliver",
    ),
]
