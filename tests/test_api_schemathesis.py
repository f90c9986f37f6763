"""Schemathesis over the whole OpenAPI document, against the running portal.

For every operation, generated requests (valid ones, and in a second pass invalid ones)
go to ``live_server`` with a real API token. No answer may be a server error, and every
answer must be documented: its status code, content type and body schema.
"""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import services as token_services
from api.models import ApiToken

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Examples per operation and mode: enough to reach every branch of the input checks,
# few enough that the whole schema runs in about a minute.
EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 6}


class Credentials:
    """A token of ``user``; renewed if a generated DELETE /tokens/{id}/ revoked it."""

    def __init__(self, user):
        self.user = user
        self._new()

    def _new(self):
        self.token, self.key = token_services.token_create(user=self.user, name="schemathesis")

    def headers(self):
        if ApiToken.objects.filter(pk=self.token.pk, revoked_at__isnull=False).exists():
            self._new()
        return {"Authorization": f"Token {self.key}", "Accept-Language": "en"}


def _fuzz(base_url, credentials, modes, *, scale=1.0):
    session = requests.Session()
    document = session.get(f"{base_url}/api/schema/?format=json", headers=credentials.headers())
    assert document.status_code == 200, document.text[:500]
    schema = schemathesis.openapi.from_dict(document.json())
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in modes:

            @settings(
                max_examples=max(1, int(EXAMPLES[mode] * scale)),
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                response = case.call(
                    base_url=base_url, session=session, headers=credentials.headers()
                )
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except BaseException as exc:  # hypothesis raises a group: collect, report all
                if isinstance(exc, KeyboardInterrupt):
                    raise
                if isinstance(exc, Unsatisfiable):
                    continue  # nothing invalid to generate here (e.g. a free-text parameter)
                failures.append(f"{operation.label} [{mode.value}]: {exc}"[:3000])
    assert operations >= 30
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_schema_holds_for_an_it_admin(live_server, world, settings):
    settings.API_TOKEN_RATE = "100000/minute"
    _fuzz(
        live_server.url,
        Credentials(world.org.admin.user),
        [GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    )


@pytest.mark.slow
def test_schema_holds_for_an_employee(live_server, world, settings):
    settings.API_TOKEN_RATE = "100000/minute"
    # The refusals (403, 404) are simpler than the admin's answers: fewer examples suffice.
    _fuzz(
        live_server.url,
        Credentials(world.org.alice.user),
        [GenerationMode.POSITIVE],
        scale=0.5,
    )
