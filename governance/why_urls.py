from django.urls import path

from governance import why_views as views

app_name = "why"

urlpatterns = [
    path("berechtigung/<int:pk>/", views.EntitlementWhyView.as_view(), name="entitlement"),
    path("antrag/<int:pk>/", views.RequestWhyView.as_view(), name="request"),
]
