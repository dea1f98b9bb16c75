"""A real controller in-process with the S3 object store on a free port, plain HTTP and HTTPS
with a test CA (harness.aws)."""

from harness.aws import s3cloud, s3cloud_tls  # noqa: F401 - the fixtures
