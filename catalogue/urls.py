from django.urls import include, path

from catalogue import views

app_name = "catalogue"

urlpatterns = [
    path("", views.CatalogueIndexView.as_view(), name="index"),
    path("kategorie/<slug:slug>/", views.CategoryView.as_view(), name="category"),
    path("leistung/<slug:slug>/", views.ItemDetailView.as_view(), name="item"),
    path("personen/suche/", views.PeopleSearchView.as_view(), name="people_search"),
    path("katalog/austausch/", include("catalogue.exchange.urls")),
]
