"""Directory errors, split by what a job should do about them."""

from ldap3.core import exceptions as ldap_exc

# Result codes worth another try: the server is busy, unavailable or ran out of time.
TRANSIENT_RESULT_CODES = {3, 11, 51, 52, 80}


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


def classify(exc: Exception) -> DirectoryError:
    """Map an ldap3 exception to a transient or permanent directory error."""
    if isinstance(exc, DirectoryError):
        return exc
    if isinstance(
        exc,
        ldap_exc.LDAPSocketOpenError
        | ldap_exc.LDAPSocketReceiveError
        | ldap_exc.LDAPSocketSendError
        | ldap_exc.LDAPSessionTerminatedByServerError
        | ldap_exc.LDAPResponseTimeoutError
        | ldap_exc.LDAPCommunicationError
        | ldap_exc.LDAPServerPoolExhaustedError
        | ldap_exc.LDAPStartTLSError
        | ConnectionError
        | TimeoutError,
    ):
        return TransientDirectoryError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ldap_exc.LDAPOperationResult):
        code = exc.result
        text = f"{exc.description or ''} ({code}): {exc.message or ''}".strip()
        if code in TRANSIENT_RESULT_CODES:
            return TransientDirectoryError(text, code=code)
        return PermanentDirectoryError(text, code=code)
    return PermanentDirectoryError(f"{type(exc).__name__}: {exc}")
