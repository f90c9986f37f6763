from django.urls import path

from requests_app import views

app_name = "requests"

urlpatterns = [
    path("", views.MyRequestsView.as_view(), name="mine"),
    path("genehmigungen/", views.ApprovalsView.as_view(), name="approvals"),
    path(
        "genehmigungen/gemeinsam/",
        views.DecideTogetherView.as_view(),
        name="decide_together",
    ),
    path("bearbeitung/", views.QueueView.as_view(), name="queue"),
    path(
        "bearbeitung/aufgaben/<int:pk>/erledigt/",
        views.TaskDoneView.as_view(),
        name="task_done",
    ),
    path("vertretungen/", views.SubstitutionsView.as_view(), name="substitutions"),
    path(
        "vertretungen/<int:pk>/loeschen/",
        views.SubstitutionDeleteView.as_view(),
        name="substitution_delete",
    ),
    path("<int:pk>/", views.RequestDetailView.as_view(), name="detail"),
    path("<int:pk>/bewertung/", views.RequestRateView.as_view(), name="rate"),
    path("<int:pk>/kommentar/", views.RequestCommentView.as_view(), name="comment"),
    path("<int:pk>/anhalten/", views.RequestHoldView.as_view(), name="hold"),
    path("<int:pk>/fortsetzen/", views.RequestResumeView.as_view(), name="resume"),
    path("<int:pk>/<slug:action>/", views.RequestActionView.as_view(), name="action"),
]
