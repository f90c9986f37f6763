from django.urls import path

from governance import review_views as views

app_name = "reviews"

urlpatterns = [
    path("", views.ReviewsView.as_view(), name="pending"),
    path("kampagnen/", views.CampaignListView.as_view(), name="campaigns"),
    path("kampagnen/<int:pk>/", views.CampaignDetailView.as_view(), name="campaign"),
    path("kampagnen/<int:pk>/bericht/", views.CampaignReportView.as_view(), name="report"),
]
