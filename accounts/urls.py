from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("anmeldesperren/", views.LockoutListView.as_view(), name="lockouts"),
]
