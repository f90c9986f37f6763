from django.urls import path

from provisioning import editor, views

app_name = "provisioning"

urlpatterns = [
    path("auftraege/", views.JobListView.as_view(), name="jobs"),
    path("auftraege/<int:pk>/", views.JobDetailView.as_view(), name="job"),
    path("auftraege/<int:pk>/<slug:action>/", views.JobActionView.as_view(), name="job_action"),
    path("leistung/<int:pk>/aktionen/", editor.ItemActionsView.as_view(), name="item_actions"),
    path("berechtigungen/", views.EntitlementListView.as_view(), name="entitlements"),
    path(
        "berechtigungen/<int:pk>/entziehen/",
        views.EntitlementRevokeView.as_view(),
        name="entitlement_revoke",
    ),
]
