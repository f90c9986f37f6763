from django.urls import path

from accounts import second_factor_views, views

app_name = "accounts"

urlpatterns = [
    path("anmeldesperren/", views.LockoutListView.as_view(), name="lockouts"),
    # Outside the second_factor namespace: only a verified IT admin reaches it.
    path(
        "zweiter-faktor-zuruecksetzen/",
        second_factor_views.ResetView.as_view(),
        name="second_factor_reset",
    ),
]
