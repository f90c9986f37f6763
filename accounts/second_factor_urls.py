from django.urls import path

from accounts import second_factor_views as views

app_name = "second_factor"

urlpatterns = [
    path("", views.OverviewView.as_view(), name="overview"),
    path("einrichten/", views.SetupView.as_view(), name="setup"),
    path("pruefen/", views.VerifyView.as_view(), name="verify"),
    path("wiederherstellungscodes/", views.RecoveryCodesView.as_view(), name="recovery"),
]
