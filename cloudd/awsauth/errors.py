"""The one failure of a signature check, carrying the AWS error code S3 documents for it."""

from __future__ import annotations

from cloudd import errors


class SignatureError(errors.Forbidden):
    """The request's signature does not authenticate it (AWS's 403; a malformed one is 400 by
    its code, which the S3 renderer keeps). `message` empty means "the code's standard message"
    (the caller's API knows it); `fields` are extra elements S3 shows in its <Error> (Region,
    ArgumentName, ...)."""

    def __init__(self, code: str, message: str | None = None, **fields: str) -> None:
        super().__init__(message or "")
        self.code = code
        self.fields = fields
