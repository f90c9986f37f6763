from django.urls import path

from governance import views

app_name = "governance"

urlpatterns = [
    path("", views.ConflictReportView.as_view(), name="conflicts"),
    path("<int:pk>/", views.FindingView.as_view(), name="finding"),
    path("ausnahmen/", views.ExceptionListView.as_view(), name="exceptions"),
    path("ausnahmen/<int:pk>/", views.ExceptionView.as_view(), name="exception"),
]
