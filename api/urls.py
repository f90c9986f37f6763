"""/api/: the versioned API, its OpenAPI document and the documentation page."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from api import views
from api.controlling import report_views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("categories", views.CategoryViewSet, basename="category")
router.register("items", views.CatalogueItemViewSet, basename="item")
router.register("bundles", views.BundleViewSet, basename="bundle")
router.register("cost-centres", views.CostCentreViewSet, basename="costcentre")
router.register("cart", views.CartViewSet, basename="cart")
router.register("requests", views.RequestViewSet, basename="request")
router.register("approvals", views.ApprovalViewSet, basename="approval")
router.register("fulfilment-queue", views.FulfilmentQueueViewSet, basename="queue")
router.register("fulfilment-tasks", views.FulfilmentTaskViewSet, basename="task")
router.register("entitlements", views.EntitlementViewSet, basename="entitlement")
router.register("provisioning-jobs", views.JobViewSet, basename="job")
router.register("tokens", views.ApiTokenViewSet, basename="token")


def _api_patterns():
    patterns = [
        *router.urls,
        *(
            path(f"controlling/{name}/", view, name=f"report-{name}")
            for name, view in report_views()
        ),
        re_path(r"", views.not_found),
    ]
    # The API answers 401/403 itself (tokens carry no session): the portal's
    # LoginRequiredMiddleware must not redirect these to the login page.
    for pattern in patterns:
        pattern.callback.login_required = False
    return patterns


app_name = "api"

urlpatterns = [
    path("v1/", include(_api_patterns())),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/",
        # Swagger UI from drf-spectacular-sidecar (no CDN); the split view serves its start
        # script as a file and our template has no inline style, so the portal's CSP holds.
        SpectacularSwaggerSplitView.as_view(
            url_name="api:schema", template_name="api/swagger_ui.html"
        ),
        name="docs",
    ),
]
urlpatterns[1].callback.login_required = False
