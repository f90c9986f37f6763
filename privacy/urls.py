from django.urls import path

from privacy import views

app_name = "privacy"

urlpatterns = [
    path("auskunft/", views.SubjectAccessView.as_view(), name="access"),
    path("protokoll/", views.AuditExportView.as_view(), name="audit"),
]
