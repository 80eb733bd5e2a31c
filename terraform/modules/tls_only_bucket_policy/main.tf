# The policy document of a bucket: the caller's statements, then the two denies every bucket of the
# project carries, plain HTTP and TLS below 1.2, on the bucket and its objects. Rendered with
# jsonencode, not a policy document data source, so plans (and tests with a mocked provider) show
# the policy as it is.

locals {
  resources = [var.bucket_arn, "${var.bucket_arn}/*"]

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(jsondecode(var.statements), [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = local.resources
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "DenyOutdatedTls"
        Effect    = "Deny"
        Principal = "*"
        Action    = "s3:*"
        Resource  = local.resources
        Condition = { NumericLessThan = { "s3:TlsVersion" = "1.2" } }
      },
    ])
  })
}
