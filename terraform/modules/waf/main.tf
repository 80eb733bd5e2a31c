# AWS WAF in front of the load balancer: AWS's managed common rule set and known-bad-inputs rule
# set, and a rate-based rule per client IP. One regional web ACL, associated with the ALB.

locals {
  # Requests one client IP may send in 5 minutes before it is blocked.
  rate_limit = 3000
  # The common set blocks request bodies over 8 KB; POST /batches takes CSV batches up to
  # INGEST_MAX_BATCH_BYTES (its own bearer token and size limit guard it), so that rule only counts.
  count_only_common_rules = ["SizeRestrictions_BODY"]
}

resource "aws_wafv2_web_acl" "this" {
  name        = var.name
  description = "rates API: AWS managed common and known-bad-inputs rules, rate limit per IP"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  # Checked first and cheapest: one client sending more than rate_limit requests in 5 minutes is
  # blocked until its rate drops.
  rule {
    name     = "rate-limit-per-ip"
    priority = 0

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit                 = local.rate_limit
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-limit-per-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-common"
    priority = 1

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"

        dynamic "rule_action_override" {
          for_each = local.count_only_common_rules

          content {
            name = rule_action_override.value

            action_to_use {
              count {}
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-aws-common"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-known-bad-inputs"
    priority = 2

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-aws-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }

  tags = { Name = var.name }
}

resource "aws_wafv2_web_acl_association" "this" {
  resource_arn = var.load_balancer_arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}
