from django.urls import include, path

from catalogue import history_views, views
from catalogue.editor import bundles as bundle_editor
from catalogue.editor import views as editor_views

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
    path("katalog/verwaltung/", editor_views.ItemListView.as_view(), name="editor_list"),
    path("katalog/verwaltung/neu/", editor_views.ItemEditView.as_view(), name="editor_create"),
    path("katalog/verwaltung/<int:pk>/", editor_views.ItemEditView.as_view(), name="editor_edit"),
    path(
        "katalog/verwaltung/vorschau/",
        editor_views.ItemPreviewView.as_view(),
        name="editor_preview",
    ),
    path(
        "katalog/verwaltung/pakete/",
        bundle_editor.BundleListView.as_view(),
        name="editor_bundles",
    ),
    path(
        "katalog/verwaltung/pakete/neu/",
        bundle_editor.BundleEditView.as_view(),
        name="editor_bundle_create",
    ),
    path(
        "katalog/verwaltung/pakete/<int:pk>/",
        bundle_editor.BundleEditView.as_view(),
        name="editor_bundle",
    ),
    path("personen/suche/", views.PeopleSearchView.as_view(), name="people_search"),
    path("katalog/austausch/", include("catalogue.exchange.urls")),
]
