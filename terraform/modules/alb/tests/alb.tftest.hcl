# Plan-level tests of the alb module with a mocked AWS provider.

mock_provider "aws" {
  mock_resource "aws_lb" {
    override_during = plan
    defaults = {
      arn      = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:loadbalancer/app/rates-test/0123456789abcdef"
      dns_name = "rates-test-0123456789.eu-central-1.elb.amazonaws.com"
    }
  }

  mock_resource "aws_s3_bucket" {
    override_during = plan
    defaults = {
      id  = "rates-test-alb-logs-20260101000000000000000001"
      arn = "arn:aws:s3:::rates-test-alb-logs-20260101000000000000000001"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
}

variables {
  name           = "rates-test"
  vpc_id         = "vpc-0123456789abcdef0"
  vpc_cidr_block = "10.10.0.0/16"
  subnet_ids     = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
}

run "without_certificate_http_forwards" {
  command = plan

  assert {
    condition     = aws_lb.this.internal == false && aws_lb.this.load_balancer_type == "application"
    error_message = "The load balancer must be an internet-facing application load balancer."
  }

  assert {
    condition     = aws_lb.this.drop_invalid_header_fields == true
    error_message = "Invalid header fields must be dropped."
  }

  assert {
    condition     = aws_lb_listener.http.default_action[0].type == "forward"
    error_message = "Without a certificate, port 80 forwards to the target group."
  }

  assert {
    condition     = length(aws_lb_listener.https) == 0 && length(aws_vpc_security_group_ingress_rule.https) == 0
    error_message = "Without a certificate there is no HTTPS listener and no port 443 ingress."
  }

  assert {
    condition     = output.url == "http://rates-test-0123456789.eu-central-1.elb.amazonaws.com"
    error_message = "Without a certificate the URL is plain HTTP."
  }
}

run "with_certificate_http_redirects_to_https" {
  command = plan

  variables {
    certificate_arn = "arn:aws:acm:eu-central-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  }

  assert {
    condition     = aws_lb_listener.http.default_action[0].type == "redirect"
    error_message = "With a certificate, port 80 redirects."
  }

  assert {
    condition = (
      aws_lb_listener.http.default_action[0].redirect[0].protocol == "HTTPS" &&
      aws_lb_listener.http.default_action[0].redirect[0].port == "443" &&
      aws_lb_listener.http.default_action[0].redirect[0].status_code == "HTTP_301"
    )
    error_message = "The redirect must be a permanent one to HTTPS on 443."
  }

  assert {
    condition     = aws_lb_listener.https[0].protocol == "HTTPS" && aws_lb_listener.https[0].port == 443
    error_message = "There must be an HTTPS listener on 443."
  }

  assert {
    condition     = aws_lb_listener.https[0].ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    error_message = "The HTTPS listener must use the current TLS 1.3/1.2 policy."
  }

  assert {
    condition     = aws_lb_listener.https[0].default_action[0].type == "forward"
    error_message = "The HTTPS listener forwards to the target group."
  }

  assert {
    condition     = output.url == "https://rates-test-0123456789.eu-central-1.elb.amazonaws.com"
    error_message = "With a certificate the URL is HTTPS."
  }
}

run "target_group_checks_readiness_of_ip_targets" {
  command = plan

  assert {
    condition     = aws_lb_target_group.this.target_type == "ip" && aws_lb_target_group.this.port == 3000
    error_message = "Fargate tasks (awsvpc) register by IP on the application port 3000."
  }

  assert {
    condition     = aws_lb_target_group.this.health_check[0].path == "/readyz" && aws_lb_target_group.this.health_check[0].port == "traffic-port"
    error_message = "The health check must call /readyz on the application port."
  }

  assert {
    condition     = tonumber(aws_lb_target_group.this.deregistration_delay) <= 60
    error_message = "The deregistration delay must stay short."
  }
}

run "egress_only_to_the_application_port_in_the_vpc" {
  command = plan

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.targets.cidr_ipv4 == "10.10.0.0/16" &&
      aws_vpc_security_group_egress_rule.targets.from_port == 3000 &&
      aws_vpc_security_group_egress_rule.targets.to_port == 3000
    )
    error_message = "The load balancer may only reach the application port inside the VPC (never the metrics port)."
  }
}

run "rejects_a_certificate_that_is_not_an_acm_arn" {
  command = plan

  variables {
    certificate_arn = "my-certificate"
  }

  expect_failures = [var.certificate_arn]
}


run "access_logs_go_to_a_private_encrypted_bucket_with_expiry" {
  command = plan

  variables {
    access_logs_expiration_days = 90
  }

  assert {
    condition = (
      one(aws_lb.this.access_logs).enabled &&
      one(aws_lb.this.access_logs).prefix == "alb" &&
      startswith(aws_s3_bucket.access_logs[0].bucket_prefix, "rates-test-alb-logs-")
    )
    error_message = "The load balancer logs to its own bucket under alb/."
  }

  assert {
    condition     = one(one(aws_s3_bucket_server_side_encryption_configuration.access_logs[0].rule).apply_server_side_encryption_by_default).sse_algorithm == "AES256"
    error_message = "The access logs are encrypted (SSE-S3, the only encryption log delivery supports)."
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.access_logs[0].block_public_acls &&
      aws_s3_bucket_public_access_block.access_logs[0].block_public_policy &&
      aws_s3_bucket_public_access_block.access_logs[0].ignore_public_acls &&
      aws_s3_bucket_public_access_block.access_logs[0].restrict_public_buckets
    )
    error_message = "The access logs bucket blocks all public access."
  }

  assert {
    condition     = one(one(aws_s3_bucket_lifecycle_configuration.access_logs[0].rule).expiration).days == 90
    error_message = "Access logs expire after access_logs_expiration_days."
  }

  assert {
    condition = [for s in jsondecode(aws_s3_bucket_policy.access_logs[0].policy).Statement : [s.Sid, s.Effect, s.Principal, s.Action, s.Resource]] == [
      ["LoadBalancerLogDelivery", "Allow", { Service = "logdelivery.elasticloadbalancing.amazonaws.com" }, "s3:PutObject", "arn:aws:s3:::rates-test-alb-logs-20260101000000000000000001/alb/AWSLogs/123456789012/*"],
      ["DenyInsecureTransport", "Deny", "*", "s3:*", ["arn:aws:s3:::rates-test-alb-logs-20260101000000000000000001", "arn:aws:s3:::rates-test-alb-logs-20260101000000000000000001/*"]],
      ["DenyOutdatedTls", "Deny", "*", "s3:*", ["arn:aws:s3:::rates-test-alb-logs-20260101000000000000000001", "arn:aws:s3:::rates-test-alb-logs-20260101000000000000000001/*"]],
    ]
    error_message = "Only ELB log delivery may write, under alb/AWSLogs/<account>/, and only over TLS 1.2 or later."
  }
}

run "access_logs_can_be_off" {
  command = plan

  variables {
    enable_access_logs = false
  }

  assert {
    condition     = length(aws_lb.this.access_logs) == 0 && length(aws_s3_bucket.access_logs) == 0
    error_message = "Without access logs there is no bucket."
  }
}

run "target_group_can_be_replaced_without_a_name_clash" {
  command = plan

  assert {
    condition     = aws_lb_target_group.this.name_prefix == "api-"
    error_message = "The target group is named by prefix, so a replacement can exist next to the old one (create_before_destroy)."
  }
}

