# Plan-level tests of the waf module with a mocked AWS provider.

mock_provider "aws" {}

variables {
  name              = "rates-test"
  load_balancer_arn = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:loadbalancer/app/rates-test/0123456789abcdef"
}

run "managed_rules_and_rate_limit_on_the_alb" {
  command = plan

  assert {
    condition     = aws_wafv2_web_acl.this.scope == "REGIONAL" && length(one(aws_wafv2_web_acl.this.default_action).allow) == 1
    error_message = "A regional web ACL (for an ALB) that allows what no rule blocks."
  }

  assert {
    condition = {
      for r in aws_wafv2_web_acl.this.rule : r.name => r.priority
      } == {
      "rate-limit-per-ip"    = 0
      "aws-common"           = 1
      "aws-known-bad-inputs" = 2
    }
    error_message = "The rate rule, the common rule set and the known-bad-inputs rule set, in this order."
  }

  assert {
    condition = toset(flatten([
      for r in aws_wafv2_web_acl.this.rule : [
        for s in r.statement : [for m in s.managed_rule_group_statement : "${m.vendor_name}/${m.name}"]
      ]
    ])) == toset(["AWS/AWSManagedRulesCommonRuleSet", "AWS/AWSManagedRulesKnownBadInputsRuleSet"])
    error_message = "The managed rule groups are AWS's common and known-bad-inputs sets."
  }

  assert {
    condition = [
      for r in aws_wafv2_web_acl.this.rule : [
        for s in r.statement : [for b in s.rate_based_statement : [b.limit, b.aggregate_key_type]]
      ] if r.name == "rate-limit-per-ip"
    ] == [[[[3000, "IP"]]]]
    error_message = "The rate rule counts requests per client IP, 3000 in 5 minutes."
  }

  assert {
    condition = flatten([
      for r in aws_wafv2_web_acl.this.rule : [
        for s in r.statement : [
          for m in s.managed_rule_group_statement : [for o in m.rule_action_override : o.name]
        ]
      ] if r.name == "aws-common"
    ]) == ["SizeRestrictions_BODY"]
    error_message = "Only the body size rule of the common set is relaxed to count (POST /batches uploads)."
  }

  assert {
    condition     = aws_wafv2_web_acl_association.this.resource_arn == var.load_balancer_arn
    error_message = "The web ACL is associated with the load balancer."
  }
}
