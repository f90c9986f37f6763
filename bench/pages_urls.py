"""The portal's URLs plus the benchmark's floor view (bench/pages_settings.py only)."""

from django.http import HttpResponse
from django.urls import path

from itportal.urls import handler403
from itportal.urls import urlpatterns as portal_urlpatterns

FLOOR_PATH = "bench/floor/"


def floor(request):
    """Login required (LoginRequiredMiddleware), no query of its own: the stack's cost."""
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path(FLOOR_PATH, floor, name="bench_floor"), *portal_urlpatterns]

__all__ = ["handler403", "urlpatterns"]
