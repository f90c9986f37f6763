"""Single sign-on with OpenID Connect (issue 13) against a real provider process on loopback
(npm oidc-provider): the claims land on the person's one account, roles follow the groups
claim, unknown people are refused with a message, logout goes through the provider."""

import importlib.util
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model

from catalogue.models import Employee
from itportal import roles
from tests.factories import EmployeeFactory, UserFactory
from tests.oidc_fixtures import PORTAL, PROVIDER_DIR, _free_port, running_provider

pytestmark = pytest.mark.django_db


@pytest.fixture
def sso(oidc_provider, settings, org):
    for name, value in oidc_provider.settings().items():
        setattr(settings, name, value)
    settings.AUTHENTICATION_BACKENDS = [
        "axes.backends.AxesStandaloneBackend",
        "accounts.oidc.PortalOIDCBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    return oidc_provider


@pytest.fixture
def anna(org):
    return EmployeeFactory(
        personnel_number="m10042", department=org.department, user__username="mitarbeiterin"
    )


def sso_login(client, provider, subject, next_url=""):
    start = client.get("/oidc/authenticate/" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302 and start.url.startswith(provider.issuer)
    callback = provider.sign_in(requests.Session(), start.url, subject)
    parts = urlsplit(callback)
    return client.get(parts.path, parse_qs(parts.query))


def test_the_login_page_offers_single_sign_on(client, sso):
    assert 'href="/oidc/authenticate/' in client.get("/accounts/login/").content.decode()


def test_an_employee_lands_in_her_one_account(client, sso, anna):
    users_before = get_user_model().objects.count()
    response = sso_login(client, sso, "s-anna", next_url="/antraege/")
    assert response.status_code == 302 and response.url == "/antraege/"
    assert int(client.session["_auth_user_id"]) == anna.user_id
    anna.user.refresh_from_db()
    assert (anna.user.first_name, anna.user.last_name) == ("Anna", "Schmidt")
    assert anna.user.email == "anna.schmidt@musterstadt.example"
    assert get_user_model().objects.count() == users_before
    assert client.get("/antraege/").status_code == 200


def test_roles_follow_the_groups_claim(client, sso, org):
    markus = EmployeeFactory(
        personnel_number="m10007", department=org.department, user__username="itadmin"
    )
    sso_login(client, sso, "s-markus")
    assert markus.user.groups.filter(name=roles.IT_ADMIN).exists()
    markus.user.refresh_from_db()
    assert markus.user.is_staff


def test_a_person_the_portal_does_not_know_is_refused(client, sso):
    users_before = get_user_model().objects.count()
    response = sso_login(client, sso, "s-fremd")
    assert response.status_code == 302 and response.url == "/accounts/login/"
    page = client.get(response.url).content.decode()
    assert "not registered in the portal" in page
    assert "_auth_user_id" not in client.session
    assert get_user_model().objects.count() == users_before


def test_the_provider_never_opens_a_superuser_or_a_deactivated_person(client, sso, anna, org):
    root = UserFactory(username="root", is_superuser=True, is_staff=True)
    EmployeeFactory(user=root, personnel_number="r1", department=org.department)
    sso_login(client, sso, "s-root")
    assert "_auth_user_id" not in client.session
    Employee.objects.filter(pk=anna.pk).update(is_active=False)
    sso_login(client, sso, "s-anna")
    assert "_auth_user_id" not in client.session
    assert "deactivated" in client.get("/accounts/login/").content.decode()


def test_logout_goes_through_the_provider(client, sso, anna):
    sso_login(client, sso, "s-anna")
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response.url.startswith(f"{sso.issuer}/session/end?")
    query = parse_qs(urlsplit(response.url).query)
    assert query["post_logout_redirect_uri"] == ["http://testserver/accounts/login/"]
    assert query["id_token_hint"]
    assert "_auth_user_id" not in client.session
    # The provider accepts it: it asks to confirm the logout for this client.
    answer = requests.get(response.url, timeout=10)
    assert answer.status_code == 200 and "logout" in answer.text.lower()


def test_without_sso_configured_its_pages_do_not_exist(client, settings):
    settings.OIDC_ENABLED = False
    assert client.get("/oidc/authenticate/").status_code == 404
    assert "oidc" not in client.get("/accounts/login/").content.decode()


def test_the_demo_provider_signs_anna_in(client, settings, org, anna, tmp_path):
    """scripts/demo.sh's provider configuration (scripts/oidc-provider/demo_config.py): Anna
    signs in at the provider as "anna" and lands in her one account."""
    spec = importlib.util.spec_from_file_location("demo_config", PROVIDER_DIR / "demo_config.py")
    demo_config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_config)
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = demo_config.config(port=port, issuer=issuer, client_id="itportal-demo",
                                client_secret="demo-secret", portals=[PORTAL])  # fmt: skip
    with running_provider(config, tmp_path / "provider.log") as provider:
        for name, value in provider.settings().items():
            setattr(settings, name, value)
        settings.OIDC_RP_CLIENT_ID, settings.OIDC_RP_CLIENT_SECRET = "itportal-demo", "demo-secret"
        settings.OIDC_IT_ADMIN_GROUP = ""
        settings.AUTHENTICATION_BACKENDS = [
            "axes.backends.AxesStandaloneBackend",
            "accounts.oidc.PortalOIDCBackend",
            "django.contrib.auth.backends.ModelBackend",
        ]
        response = sso_login(client, provider, "anna", next_url="/antraege/")
    assert response.status_code == 302 and response.url == "/antraege/"
    assert int(client.session["_auth_user_id"]) == anna.user_id
