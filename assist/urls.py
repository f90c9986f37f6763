from django.urls import path

from assist import views

app_name = "assist"

urlpatterns = [
    path("was-brauchen-sie/", views.WordsView.as_view(), name="words"),
]
