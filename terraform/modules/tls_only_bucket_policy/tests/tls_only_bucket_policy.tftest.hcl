# Plan-level tests of the tls_only_bucket_policy module (no resources, no provider).

variables {
  bucket_arn = "arn:aws:s3:::rates-test"
}

run "denies_plain_http_and_old_tls_on_the_bucket_and_its_objects" {
  command = plan

  assert {
    condition = jsondecode(output.json) == {
      Version = "2012-10-17"
      Statement = [
        {
          Sid       = "DenyInsecureTransport"
          Effect    = "Deny"
          Principal = "*"
          Action    = "s3:*"
          Resource  = ["arn:aws:s3:::rates-test", "arn:aws:s3:::rates-test/*"]
          Condition = { Bool = { "aws:SecureTransport" = "false" } }
        },
        {
          Sid       = "DenyOutdatedTls"
          Effect    = "Deny"
          Principal = "*"
          Action    = "s3:*"
          Resource  = ["arn:aws:s3:::rates-test", "arn:aws:s3:::rates-test/*"]
          Condition = { NumericLessThan = { "s3:TlsVersion" = "1.2" } }
        },
      ]
    }
    error_message = "Without statements of its own, the policy only denies plain HTTP and TLS below 1.2, on the bucket and its objects."
  }
}

run "the_callers_statements_come_first" {
  command = plan

  variables {
    statements = jsonencode([{ Sid = "Writer", Effect = "Allow", Principal = { Service = "logdelivery.elasticloadbalancing.amazonaws.com" }, Action = "s3:PutObject", Resource = "arn:aws:s3:::rates-test/logs/*" }])
  }

  assert {
    condition     = [for s in jsondecode(output.json).Statement : s.Sid] == ["Writer", "DenyInsecureTransport", "DenyOutdatedTls"]
    error_message = "The caller's statements come first, the TLS denies after them."
  }
}

run "rejects_statements_that_are_not_a_json_array" {
  command = plan

  variables {
    statements = "{\"Sid\":\"x\"}"
  }

  expect_failures = [var.statements]
}
