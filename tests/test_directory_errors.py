"""Transient means transient: every directory answer and failure kind, classified both ways.

The parametrised cases are the contract: turning every error permanent (or every one
transient) fails half of them. The slapd cases show the classification holds for the
answers a real server gives, not only for exceptions we build.
"""

import os
import signal
import ssl
import time
from pathlib import Path

import ldap3
import pytest
from ldap3.core import exceptions as ldap_exc

from provisioning.backends import get_backend
from provisioning.backends.errors import (
    PermanentDirectoryError,
    TransientDirectoryError,
    classify,
    connection_lost,
    result_error,
)


def result(code: int) -> ldap_exc.LDAPOperationResult:
    # ldap3 turns a result code into its own subclass (LDAPBusyResult for 51, ...).
    return ldap_exc.LDAPOperationResult(
        result=code, description=f"code{code}", message="as the server said"
    )


def merged(ldap_class, os_error):
    """The exception class ldap3 really raises for a socket failure: both kinds at once."""
    return ldap_exc.communication_exception_factory(ldap_class, os_error)(str(os_error))


TRANSIENT_CODES = {
    3: "timeLimitExceeded",
    11: "adminLimitExceeded",
    51: "busy",
    52: "unavailable",
    80: "other",
}
PERMANENT_CODES = {
    1: "operationsError",
    2: "protocolError",
    4: "sizeLimitExceeded",
    8: "strongerAuthRequired",
    10: "referral",
    13: "confidentialityRequired",
    16: "noSuchAttribute",
    17: "undefinedAttributeType",
    19: "constraintViolation",
    20: "attributeOrValueExists",
    21: "invalidAttributeSyntax",
    32: "noSuchObject",
    34: "invalidDNSyntax",
    48: "inappropriateAuthentication",
    49: "invalidCredentials",
    50: "insufficientAccessRights",
    53: "unwillingToPerform",
    64: "namingViolation",
    65: "objectClassViolation",
    66: "notAllowedOnNonLeaf",
    68: "entryAlreadyExists",
    69: "objectClassModsProhibited",
}

TRANSIENT_EXCEPTIONS = {
    "socket open refused": lambda: merged(
        ldap_exc.LDAPSocketOpenError, ConnectionRefusedError(111, "Connection refused")
    ),
    "socket open": lambda: ldap_exc.LDAPSocketOpenError("unable to open socket"),
    "socket receive": lambda: ldap_exc.LDAPSocketReceiveError("error receiving data"),
    "socket receive reset": lambda: merged(
        ldap_exc.LDAPSocketReceiveError, ConnectionResetError(104, "Connection reset by peer")
    ),
    "socket receive timed out": lambda: merged(
        ldap_exc.LDAPSocketReceiveError, TimeoutError("timed out")
    ),
    "socket send": lambda: ldap_exc.LDAPSocketSendError("socket sending error"),
    "socket send broken pipe": lambda: merged(
        ldap_exc.LDAPSocketSendError, BrokenPipeError(32, "Broken pipe")
    ),
    "socket close": lambda: ldap_exc.LDAPSocketCloseError("socket closing error"),
    "session terminated by server": lambda: ldap_exc.LDAPSessionTerminatedByServerError(
        "session terminated by server"
    ),
    "response timeout": lambda: ldap_exc.LDAPResponseTimeoutError("no response from server"),
    "server pool exhausted": lambda: ldap_exc.LDAPServerPoolExhaustedError("no active server"),
    "maximum retries": lambda: ldap_exc.LDAPMaximumRetriesError("restartable gave up"),
    "start_tls dropped": lambda: ldap_exc.LDAPStartTLSError("wrap socket error: EOF"),
    "connection reset": lambda: ConnectionResetError(104, "Connection reset by peer"),
    "connection refused": lambda: ConnectionRefusedError(111, "Connection refused"),
    "broken pipe": lambda: BrokenPipeError(32, "Broken pipe"),
    "timeout": lambda: TimeoutError("timed out"),
}
PERMANENT_EXCEPTIONS = {
    "invalid DN": lambda: ldap_exc.LDAPInvalidDnError("invalid DN cn=x,,dc=y"),
    "invalid filter": lambda: ldap_exc.LDAPInvalidFilterError("malformed filter"),
    "unknown attribute": lambda: ldap_exc.LDAPAttributeError("invalid attribute type"),
    "unknown object class": lambda: ldap_exc.LDAPObjectClassError("invalid class"),
    "bind refused": lambda: ldap_exc.LDAPBindError("invalidCredentials"),
    "certificate (ldap3)": lambda: ldap_exc.LDAPCertificateError("hostname doesn't match"),
    "certificate on open": lambda: ldap_exc.LDAPSocketOpenError(
        "socket ssl wrapping error: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    ),
    "certificate (ssl)": lambda: ssl.SSLCertVerificationError(1, "certificate verify failed"),
    "a bug of ours": lambda: TypeError("unsupported operand"),
    "bad value": lambda: ValueError("invalid literal"),
}


@pytest.mark.parametrize("code", sorted(TRANSIENT_CODES), ids=TRANSIENT_CODES.get)
def test_try_again_result_codes_are_transient(code):
    error = classify(result(code))
    assert isinstance(error, TransientDirectoryError) and error.transient
    assert error.code == code
    assert "as the server said" in error.message


@pytest.mark.parametrize("code", sorted(PERMANENT_CODES), ids=PERMANENT_CODES.get)
def test_refusals_are_permanent(code):
    error = classify(result(code))
    assert isinstance(error, PermanentDirectoryError) and not error.transient
    assert error.code == code
    assert "as the server said" in error.message


@pytest.mark.parametrize("make", TRANSIENT_EXCEPTIONS.values(), ids=TRANSIENT_EXCEPTIONS.keys())
def test_connection_failures_and_timeouts_are_transient(make):
    error = classify(make())
    assert isinstance(error, TransientDirectoryError) and error.transient
    assert error.message


@pytest.mark.parametrize("make", PERMANENT_EXCEPTIONS.values(), ids=PERMANENT_EXCEPTIONS.keys())
def test_bad_requests_and_untrusted_certificates_are_permanent(make):
    error = classify(make())
    assert isinstance(error, PermanentDirectoryError) and not error.transient
    assert error.message


@pytest.mark.parametrize(
    ("code", "transient"),
    [(3, True), (11, True), (51, True), (0, None), (5, None), (6, None), (4, False), (10, False)],
)
def test_results_ldap3_returns_without_raising(code, transient):
    """ldap3 never raises for a search that ran out of time: we read its result."""
    error = result_error({"result": code, "description": "x", "message": "m", "dn": ""})
    assert (None if error is None else error.transient) is transient


def test_classified_errors_pass_through_unchanged():
    original = PermanentDirectoryError("No such group", code=32)
    assert classify(original) is original


@pytest.mark.parametrize(
    ("make", "lost"),
    [
        (TRANSIENT_EXCEPTIONS["socket receive"], True),
        (TRANSIENT_EXCEPTIONS["socket send broken pipe"], True),
        (TRANSIENT_EXCEPTIONS["session terminated by server"], True),
        (TRANSIENT_EXCEPTIONS["connection reset"], True),
        (TRANSIENT_EXCEPTIONS["response timeout"], False),  # hung: a second wait won't help
        (TRANSIENT_EXCEPTIONS["socket receive timed out"], False),
        (TRANSIENT_EXCEPTIONS["socket open"], False),  # down: reconnecting is what failed
        (lambda: result(51), False),
        (lambda: result(32), False),
    ],
)
def test_only_a_dead_connection_is_worth_one_reconnect(make, lost):
    assert connection_lost(make()) is lost


# --- what a real slapd answers -------------------------------------------------------------


@pytest.fixture
def backend(directory_settings):
    from tests.provisioning_support import add_group

    directory_settings.group = add_group(directory_settings, "real-errors")
    return get_backend()


def test_real_refusals_from_slapd_are_permanent(backend, directory_settings):
    slapd = directory_settings
    user = slapd.user_dn("nobody")
    cases = {
        32: lambda c: c.modify(
            slapd.group_dn("missing"), {"member": [(ldap3.MODIFY_ADD, [slapd.bind_dn])]}
        ),
        # The service account may write people and groups, not the departments.
        50: lambda c: c.add(
            f"ou=new,{slapd.department_base}", ["organizationalUnit"], {"ou": "new"}
        ),
        # displayName is single-valued.
        19: lambda c: c.add(
            user, ["inetOrgPerson"], {"cn": "x", "sn": "x", "displayName": ["a", "b"]}
        ),
        20: lambda c: c.modify(slapd.group, {"member": [(ldap3.MODIFY_ADD, [slapd.bind_dn])]}),
        16: lambda c: c.modify(slapd.group, {"member": [(ldap3.MODIFY_DELETE, [user])]}),
    }
    for code, operation in cases.items():
        with pytest.raises(PermanentDirectoryError) as caught:
            backend.run(operation)
        assert caught.value.code == code, caught.value.message
    with pytest.raises(PermanentDirectoryError):  # invalid DN syntax, refused before sending
        backend.run(lambda c: c.modify("cn=x,,=", {"cn": [(ldap3.MODIFY_REPLACE, ["y"])]}))
    backend.check()  # a permanent error leaves the connection usable


def test_stopped_slapd_is_transient(backend, directory_settings):
    backend.check()
    directory_settings.stop()
    try:
        with pytest.raises(TransientDirectoryError):
            backend.check()  # the reconnect finds nobody listening
        with pytest.raises(TransientDirectoryError):
            backend.check()  # and so does a fresh connection
    finally:
        directory_settings.start()
    backend.check()


def wait_until_stopped(pid: int) -> None:
    """SIGSTOP lands asynchronously: wait until every slapd thread is in state T."""
    tasks = Path(f"/proc/{pid}/task")
    for _ in range(1000):
        states = {
            (task / "stat").read_text().rsplit(")", 1)[1].split()[0] for task in tasks.iterdir()
        }
        if states == {"T"}:
            return
        time.sleep(0.005)
    raise AssertionError(f"slapd {pid} did not stop: {states}")


def test_hung_slapd_is_transient(directory_settings, settings):
    from provisioning.backends import reset_backends

    settings.DIRECTORY = {**settings.DIRECTORY, "timeout": 1}
    reset_backends()
    backend = get_backend()
    backend.check()
    pid = directory_settings.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until_stopped(pid)
        with pytest.raises(TransientDirectoryError):
            backend.check()
    finally:
        os.kill(pid, signal.SIGCONT)
    backend.check()
