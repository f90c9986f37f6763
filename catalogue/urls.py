from django.urls import include, path

from catalogue import history_views, views

app_name = "catalogue"

urlpatterns = [
    path("", views.CatalogueIndexView.as_view(), name="index"),
    path("kategorie/<slug:slug>/", views.CategoryView.as_view(), name="category"),
    path("leistung/<slug:slug>/", views.ItemDetailView.as_view(), name="item"),
    path(
        "katalog/leistung/<int:pk>/verlauf/",
        history_views.ItemHistoryView.as_view(),
        name="item_history",
    ),
    path(
        "katalog/leistung/<int:pk>/verlauf/<int:history_id>/",
        history_views.ItemVersionView.as_view(),
        name="item_version",
    ),
    path("personen/suche/", views.PeopleSearchView.as_view(), name="people_search"),
    path("katalog/austausch/", include("catalogue.exchange.urls")),
]
