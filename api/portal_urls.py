from django.urls import path

from api import portal_views

app_name = "tokens"

urlpatterns = [
    path("", portal_views.TokenListView.as_view(), name="list"),
    path("<int:pk>/widerrufen/", portal_views.TokenRevokeView.as_view(), name="revoke"),
]
