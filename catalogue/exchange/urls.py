from django.urls import path

from catalogue.exchange import FORMAT_VERSION, views

app_name = "exchange"

urlpatterns = [
    path("", views.IndexView.as_view(), name="index"),
    path("export/", views.ExportView.as_view(), name="export"),
    path("import/", views.UploadView.as_view(), name="upload"),
    path("import/zuordnen/", views.MapView.as_view(), name="map"),
    path("import/vorschau/", views.PreviewView.as_view(), name="preview"),
    path("import/abbrechen/", views.CancelView.as_view(), name="cancel"),
    path(f"schema/{FORMAT_VERSION}.json", views.SchemaView.as_view(), name="schema"),
]
