from django.urls import path

from governance import views

app_name = "governance"

urlpatterns = [path("", views.ConflictReportView.as_view(), name="conflicts")]
