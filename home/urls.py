from django.urls import path

from home import views

app_name = "home"

urlpatterns = [
    path("start/", views.StartView.as_view(), name="start"),
]
