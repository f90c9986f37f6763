"""Assistance pages: thin views over assist.words and assist.anomalies."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import render
from django.views import View

from assist import selectors, words


class WordsView(View):
    """ "Was brauchen Sie?": a sentence to the catalogue items that fit, with the reasons."""

    template_name = "assist/words.html"

    def get(self, request):
        if not selectors.enabled("ordering_in_words"):
            raise Http404
        text = request.GET.get("q", "")[: words.MAX_TEXT]
        employee = getattr(request.user, "employee", None)
        context = {"text": text, "has_employee": employee is not None}
        if text.strip() and employee is not None:
            context["result"] = words.interpret(text, employee)
            context["service_desk_phone"] = settings.PORTAL_SERVICE_DESK_PHONE
            context["service_desk_email"] = settings.PORTAL_SERVICE_DESK_EMAIL
        return render(request, self.template_name, context)
