"""The start page: what I ordered, what waits for me, and per role what needs a look. Thin."""

from django.shortcuts import render
from django.views import View

from home import selectors


class StartView(View):
    def get(self, request):
        return render(request, "home/start.html", selectors.start_page(request.user))
