"""Directory errors, split by what a job should do about them.

The one place that decides "try again" versus "refused": every directory call goes
through ``classify``. Transient means the directory could not answer now (busy,
unavailable, out of time, connection lost); a job retries it with backoff. Permanent
means the directory understood and refused (no such object, no access, constraint,
bad syntax); retrying cannot help, so the job fails at once with the directory's words.
"""

import ssl

from ldap3.core import exceptions as ldap_exc
from ldap3.core import results

# Result codes that mean "not now": worth another try after a pause.
TRANSIENT_RESULT_CODES = frozenset(
    {
        results.RESULT_TIME_LIMIT_EXCEEDED,  # 3
        results.RESULT_ADMIN_LIMIT_EXCEEDED,  # 11
        results.RESULT_BUSY,  # 51
        results.RESULT_UNAVAILABLE,  # 52
        results.RESULT_OTHER,  # 80: OpenLDAP's answer to a backend (database) hiccup
    }
)

# Codes an idempotent membership write may get when the state is already as wanted
# (checked by reading back; see DirectoryBackend.add_member / remove_member).
ATTRIBUTE_OR_VALUE_EXISTS = results.RESULT_ATTRIBUTE_OR_VALUE_EXISTS  # 20
NO_SUCH_ATTRIBUTE = results.RESULT_NO_SUCH_ATTRIBUTE  # 16
ENTRY_ALREADY_EXISTS = results.RESULT_ENTRY_ALREADY_EXISTS  # 68
UNWILLING_TO_PERFORM = results.RESULT_UNWILLING_TO_PERFORM  # 53

# The connection is gone (server restarted, idle connection cut, network reset), or the
# server did not answer in time: nothing was refused, so another try may succeed.
TRANSIENT_EXCEPTIONS = (
    ldap_exc.LDAPCommunicationError,  # socket open/send/receive/close, session terminated
    ldap_exc.LDAPResponseTimeoutError,
    ldap_exc.LDAPServerPoolExhaustedError,
    ldap_exc.LDAPMaximumRetriesError,
    ldap_exc.LDAPStartTLSError,
    ConnectionError,
    TimeoutError,
)

# Errors on a connection that was open before: the server went away in between. The
# request most likely never reached it, so one new connection is worth trying at once.
CONNECTION_LOST_EXCEPTIONS = (
    ldap_exc.LDAPSocketSendError,
    ldap_exc.LDAPSocketReceiveError,
    ldap_exc.LDAPSocketCloseError,
    ldap_exc.LDAPSessionTerminatedByServerError,
    ConnectionError,
)


class DirectoryError(Exception):
    """A directory operation failed; ``message`` is the directory's own words."""

    transient = False

    def __init__(self, message: str, *, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code


class TransientDirectoryError(DirectoryError):
    """Server down, timeout, busy: retry with backoff."""

    transient = True


class PermanentDirectoryError(DirectoryError):
    """No such object, constraint violation, insufficient access: retrying will not help."""


def _certificate_failure(exc: BaseException) -> bool:
    """A TLS certificate the configuration does not trust: fixed by an admin, not by time."""
    seen = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError | ldap_exc.LDAPCertificateError):
            return True
        if "CERTIFICATE_VERIFY_FAILED" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def connection_lost(exc: BaseException) -> bool:
    """Did a call fail because the (cached) connection was dead, not because of the request?

    A receive that timed out is a hung server, not a dead connection: a second try would
    only double the wait (ldap3 raises it as a socket receive error merged with the timeout).
    """
    return isinstance(exc, CONNECTION_LOST_EXCEPTIONS) and not isinstance(exc, TimeoutError)


def classify(exc: Exception) -> DirectoryError:
    """Map an ldap3 (or socket) exception to a transient or permanent directory error."""
    if isinstance(exc, DirectoryError):
        return exc
    if isinstance(exc, ldap_exc.LDAPOperationResult):
        code = exc.result
        text = f"{exc.description or ''} ({code}): {exc.message or ''}".strip()
        if code in TRANSIENT_RESULT_CODES:
            return TransientDirectoryError(text, code=code)
        return PermanentDirectoryError(text, code=code)
    if _certificate_failure(exc):
        return PermanentDirectoryError(f"TLS certificate not trusted: {exc}")
    if isinstance(exc, TRANSIENT_EXCEPTIONS):
        return TransientDirectoryError(f"{type(exc).__name__}: {exc}")
    # Invalid DN or filter syntax, bad attribute, a bug of ours: the same next time.
    return PermanentDirectoryError(f"{type(exc).__name__}: {exc}")


def result_error(result: dict) -> DirectoryError | None:
    """The error of a result ldap3 returned without raising (it never raises for a search
    that ran out of time or hit a size limit, and hands back partial entries instead)."""
    code = (result or {}).get("result", 0)
    if code in (results.RESULT_SUCCESS, results.RESULT_COMPARE_FALSE, results.RESULT_COMPARE_TRUE):
        return None
    return classify(
        ldap_exc.LDAPOperationResult(
            result=code,
            description=result.get("description"),
            dn=result.get("dn"),
            message=result.get("message"),
        )
    )
