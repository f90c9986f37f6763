from django.urls import path

from notifications import views

app_name = "inbox"

urlpatterns = [
    path("", views.InboxView.as_view(), name="list"),
    path("<int:pk>/oeffnen/", views.InboxOpenView.as_view(), name="open"),
    path("alle-gelesen/", views.InboxReadAllView.as_view(), name="read_all"),
]
