"""Order pages, mounted at the site root so their addresses sit under the item's."""

from django.urls import path

from requests_app.ordering import OrderView

app_name = "ordering"

urlpatterns = [
    path("leistung/<slug:slug>/bestellen/", OrderView.as_view(), name="order"),
]
