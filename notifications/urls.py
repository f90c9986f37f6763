from django.urls import path

from notifications import views

app_name = "notifications"

urlpatterns = [
    path("", views.OutboxView.as_view(), name="outbox"),
    path("<uuid:pk>/erneut-senden/", views.MailRetryView.as_view(), name="retry"),
]
