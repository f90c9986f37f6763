from itportal.session_copies import DROPPED_ON_POST

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class NavCountsMiddleware:
    """A POST (an order, a decision, a revocation) may change what the header counts and
    what the catalogue recommends: the session's copies are dropped, so the page after it
    counts afresh (itportal/session_copies.py)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if request.method not in SAFE_METHODS and session is not None:
            for key in DROPPED_ON_POST:
                if key in session:
                    del session[key]
        return self.get_response(request)
