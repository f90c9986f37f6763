"""Fixtures for tests against a private OpenLDAP slapd (see devtools/devdirectory.py).

One server per test process: under pytest-xdist every worker starts its own on a
free port, under its own temporary directory, with ``dbnosync`` (throwaway data).
``directory`` empties ou=people, ou=groups and ou=departments before each test.
"""

import pytest

from devtools.devdirectory import PrivateSlapd


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    """A running ``PrivateSlapd`` (suffix dc=musterstadt,dc=example), stopped after the run.

    Tests may stop and start it (same port, same data); ``directory`` restarts it
    if a test left it stopped.
    """
    server = PrivateSlapd(tmp_path_factory.mktemp("slapd"), dbnosync=True)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def directory(slapd):
    """The session's ``PrivateSlapd`` with an empty tree: only the base entries and
    the service account; ou=people, ou=groups and ou=departments have no children."""
    if not slapd.running:
        slapd.start()
    slapd.reset()
    return slapd


@pytest.fixture
def directory_settings(settings, directory):
    """Point ``settings.DIRECTORY`` at the clean private slapd (service account bind).

    Backends are cached per config, so they are closed before and after the test.
    """
    from provisioning.backends import reset_backends

    settings.DIRECTORY = {**settings.DIRECTORY, **directory.config_kwargs(), "timeout": 5}
    reset_backends()
    yield directory
    reset_backends()


@pytest.fixture
def provisioning_directory(directory_settings, settings):
    """``directory_settings`` with provisioning retries milliseconds apart, for job tests."""
    settings.PROVISIONING_RETRY_BASE_SECONDS = 0.01
    settings.PROVISIONING_RETRY_MAX_SECONDS = 0.02
    return directory_settings


@pytest.fixture
def vpn(org, provisioning_directory):
    """An automated item "VPN-Zugang" adding its beneficiary to cn=vpn-users: (item, group DN)."""
    from tests.provisioning_support import add_group, automated_item, group_action

    group = add_group(provisioning_directory, "vpn-users")
    item = automated_item(org.service_desk, group_action(group), name="VPN-Zugang", slug="vpn")
    return item, group
