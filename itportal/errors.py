from django.shortcuts import render


def permission_denied(request, exception=None):
    """403 page that shows why, when the code said why."""
    message = str(exception) if exception and str(exception) else ""
    return render(request, "403.html", {"message": message}, status=403)
