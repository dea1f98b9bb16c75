"""S3 errors: one exception carrying the S3 code, rendered as the un-namespaced <Error> document.

botocore reads the code from `<Error><Code>`; a namespace on `<Error>` makes it read an empty
code, so the document deliberately has none.
"""

from __future__ import annotations

import logging
from xml.sax.saxutils import escape

from cloudd import errors
from cloudd.awsauth.errors import SignatureError
from cloudd.objectstore.storage import ObjectTooLarge, StorageError, StorageFull
from cloudd.web.inputs import InputRefused

LOG = logging.getLogger(__name__)

# code -> (HTTP status, default message), as AWS documents them.
ERRORS: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "Access Denied"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Query-string authentication is malformed."),
    "BadDigest": (400, "The Content-MD5 or checksum you specified did not match what we received."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available."),
    "BucketAlreadyOwnedByYou": (409, "Your previous request to create the named bucket succeeded "
                                "and you already own it."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty."),
    "EntityTooSmall": (400, "Your proposed upload is smaller than the minimum allowed object size."),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the "
                       "Content-Length HTTP header."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (403, "The AWS Access Key Id you provided does not exist in our records."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified is not valid."),
    "InvalidPart": (400, "One or more of the specified parts could not be found."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order."),
    "InvalidRange": (416, "The requested range is not satisfiable."),
    "InvalidRequest": (400, "Invalid Request"),
    "KeyTooLongError": (400, "Your key is too long."),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate against "
                     "our published schema."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchUpload": (404, "The specified upload does not exist."),
    "NotImplemented": (501, "A header you provided implies functionality that is not implemented."),
    "NotModified": (304, "Not Modified"),
    "PreconditionFailed": (412, "At least one of the preconditions you specified did not hold."),
    # Not an AWS code: Ceph RGW's answer to a bucket or user over its quota.
    "QuotaExceeded": (403, "The project's storage quota is exceeded."),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current time "
                             "is too large."),
    "SlowDown": (503, "Please reduce your request rate."),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the "
                              "signature you provided. Check your key and signing method."),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not match "
                                  "what was computed."),
}

# The error base's kinds -> S3's generic codes (S3 has no generic not-found or conflict code:
# "NotFound" is what S3 reports for a HEAD of a missing object, "OperationAborted" its 409).
_KIND_CODES: list[tuple[type[errors.CloudError], str]] = [
    (errors.QuotaExceeded, "QuotaExceeded"), (errors.Unauthorized, "AccessDenied"),
    (errors.Forbidden, "AccessDenied"), (errors.BadRequest, "InvalidRequest"),
    (errors.NotFound, "NotFound"), (errors.Conflict, "OperationAborted"),
    (errors.OverLimit, "EntityTooLarge"), (errors.Unavailable, "SlowDown"),
    (errors.NotImplementedYet, "NotImplemented")]


class S3Error(errors.CloudError):
    def __init__(self, code: str, message: str | None = None, **fields: str) -> None:
        status, default = ERRORS.get(code, (400, code))
        super().__init__(message or default)
        self.code = code
        self.status = status
        self.fields = fields  # extra elements: Key, BucketName, UploadId, ...

    @classmethod
    def from_kind(cls, error: errors.CloudError) -> S3Error:
        """Any `CloudError` as S3 writes it: the classes S3 has its own answer for (a failed
        signature, the store's failures, the shared parser's refusals), then any other kind (a
        domain refusal) as the nearest generic S3 code, with the kind's status."""
        if isinstance(error, S3Error):
            return error
        if isinstance(error, SignatureError):
            return cls.from_signature(error)
        if isinstance(error, StorageError):
            return _storage_failure(error)
        if isinstance(error, InputRefused):  # query values (max-keys, partNumber, ...)
            return cls("InvalidArgument", error.message)
        code = next((code for kind, code in _KIND_CODES if isinstance(error, kind)), "InternalError")
        s3_error = cls(code, error.message or None)
        s3_error.status = error.status
        return s3_error

    @classmethod
    def from_signature(cls, error: SignatureError) -> S3Error:
        """A failed signature check (cloudd.awsauth) as S3 reports it."""
        return cls(error.code, error.message, **error.fields)

    def to_xml(self, resource: str, request_id: str) -> bytes:
        extra = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in self.fields.items())
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(self.code)}</Code><Message>{escape(self.message)}</Message>"
            f"{extra}<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId>"
            "</Error>"
        ).encode()


def _storage_failure(exc: StorageError) -> S3Error:
    """The store's failures: a server error (logged) but for an upload over its size."""
    if isinstance(exc, ObjectTooLarge):
        return S3Error("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
    if isinstance(exc, StorageFull):
        return S3Error("InternalError", "The object store is out of space.")
    LOG.exception("storage failure", exc_info=exc)
    return S3Error("InternalError")
