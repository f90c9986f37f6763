"""Order pages, mounted at the site root so their addresses sit under the item's."""

from django.urls import path

from requests_app import ordering

app_name = "ordering"

urlpatterns = [
    path("leistung/<slug:slug>/bestellen/", ordering.OrderView.as_view(), name="order"),
    path("warenkorb/", ordering.CartView.as_view(), name="cart"),
    path(
        "warenkorb/<int:pk>/entfernen/",
        ordering.CartLineRemoveView.as_view(),
        name="cart_remove",
    ),
    path("pakete/", ordering.BundleListView.as_view(), name="bundles"),
    path("paket/<slug:slug>/bestellen/", ordering.BundleOrderView.as_view(), name="bundle"),
    path("bestellung/<int:pk>/", ordering.SubmissionView.as_view(), name="submission"),
]
