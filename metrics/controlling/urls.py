from django.urls import path

from metrics.controlling import sla, views

app_name = "controlling"

urlpatterns = [
    path("", views.CostView.as_view(), name="costs"),
    path("kosten.<str:fmt>", views.CostExportView.as_view(), name="costs_export"),
    path("nutzung/", views.UsageView.as_view(), name="usage"),
    path("lizenzpools/", views.PoolView.as_view(), name="pools"),
    path("prognose/", views.ForecastView.as_view(), name="forecast"),
    path("selten-bestellt/", views.RarelyOrderedView.as_view(), name="rarely_ordered"),
    path("durchlaufzeiten/", views.LeadTimeView.as_view(), name="lead_times"),
    path("zufriedenheit/", views.SatisfactionView.as_view(), name="satisfaction"),
    path("durchlaufzeiten.csv", views.LeadTimeCsvView.as_view(), name="lead_times_csv"),
    path("zufriedenheit.csv", views.SatisfactionCsvView.as_view(), name="satisfaction_csv"),
    path("auffaelligkeiten/", views.AnomalyView.as_view(), name="anomalies"),
    path("auffaelligkeiten.csv", views.AnomalyCsvView.as_view(), name="anomalies_csv"),
    path("rueckholung.csv", views.ReclaimCsvView.as_view(), name="reclaim_csv"),
    path("sla/", sla.SlaView.as_view(), name="sla"),
    path("sla.csv", sla.SlaCsvView.as_view(), name="sla_csv"),
]
