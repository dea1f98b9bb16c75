"""AWS request signing (SigV2, SigV4) shared by the object store (S3) and the EC2 Query API.

A domain package: it knows signatures, not HTTP answers. A check that fails raises
`SignatureError` with the AWS error code; the S3 app renders it as S3's <Error>, the EC2 API
maps it to its own codes.
"""
