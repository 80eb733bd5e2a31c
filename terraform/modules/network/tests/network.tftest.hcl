# Plan-level tests of the network module with a mocked AWS provider.

mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
    }
  }

  mock_data "aws_iam_policy_document" {
    defaults = {
      json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }
}

variables {
  name       = "rates-test"
  cidr_block = "10.10.0.0/16"

  permissions_boundary_arn = "arn:aws:iam::123456789012:policy/rates-ci/rates-test-boundary"
}

run "single_nat_gateway_over_two_zones" {
  command = plan

  variables {
    az_count           = 2
    single_nat_gateway = true
  }

  assert {
    condition     = local.azs == tolist(["eu-central-1a", "eu-central-1b"])
    error_message = "The subnets must use the first az_count zones."
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_eip.nat) == 1
    error_message = "single_nat_gateway must create exactly one NAT gateway."
  }

  assert {
    condition     = length(aws_route_table.private) == 2 && length(aws_route.private_nat) == 2
    error_message = "Each zone needs its own private route table with a default route."
  }

  assert {
    condition     = length(aws_subnet.public) == 2 && length(aws_subnet.private) == 2 && length(aws_subnet.database) == 2
    error_message = "There must be one public, one private and one database subnet per zone."
  }
}

run "one_nat_gateway_per_zone" {
  command = plan

  variables {
    az_count           = 3
    single_nat_gateway = false
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 3
    error_message = "Without single_nat_gateway every zone gets its own NAT gateway."
  }

  assert {
    condition     = length(aws_subnet.private) == 3 && length(aws_subnet.database) == 3
    error_message = "Three zones need three private and three database subnets."
  }
}

run "subnets_do_not_overlap_and_stay_private" {
  command = plan

  variables {
    az_count = 3
  }

  assert {
    condition = length(distinct(concat(
      local.public_subnet_cidrs,
      local.private_subnet_cidrs,
      local.database_subnet_cidrs,
    ))) == 9
    error_message = "The subnet CIDR blocks must all differ."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.map_public_ip_on_launch == false])
    error_message = "Public subnets must not hand out public IPs automatically."
  }

  assert {
    condition     = local.database_subnet_cidrs == tolist(["10.10.200.0/24", "10.10.201.0/24", "10.10.202.0/24"])
    error_message = "The database subnets must follow the documented plan."
  }
}

run "database_subnets_have_no_route_out" {
  command = plan

  assert {
    condition     = length(aws_route_table.database.route) == 0
    error_message = "The database route table must have no route besides the implicit local one."
  }
}

run "default_security_group_is_locked_down" {
  command = plan

  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The default security group must have no rules."
  }
}

run "rejects_an_invalid_cidr" {
  command = plan

  variables {
    cidr_block = "10.10.0.0/8"
  }

  expect_failures = [var.cidr_block]
}

run "rejects_a_single_zone" {
  command = plan

  variables {
    az_count = 1
  }

  expect_failures = [var.az_count]
}

run "endpoints_keep_aws_traffic_off_nat" {
  command = plan

  variables {
    az_count             = 3
    enable_vpc_endpoints = true
  }

  assert {
    condition     = keys(aws_vpc_endpoint.interface) == ["ecr.api", "ecr.dkr", "logs", "sqs", "ssm", "sts"]
    error_message = "ECR (api, dkr), CloudWatch Logs, SSM, SQS and STS get interface endpoints."
  }

  assert {
    condition = alltrue([
      for e in values(aws_vpc_endpoint.interface) :
      e.vpc_endpoint_type == "Interface" && e.private_dns_enabled
    ])
    error_message = "Interface endpoints sit in every private subnet with private DNS, so the SDKs' default names resolve to them."
  }

  assert {
    condition     = length(aws_vpc_endpoint.s3) == 1 && aws_vpc_endpoint.s3[0].vpc_endpoint_type == "Gateway"
    error_message = "S3 is a gateway endpoint on every private route table."
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.endpoints_https[0].from_port == 443 &&
      aws_vpc_security_group_ingress_rule.endpoints_https[0].to_port == 443 &&
      aws_vpc_security_group_ingress_rule.endpoints_https[0].cidr_ipv4 == "10.10.0.0/16"
    )
    error_message = "The endpoints accept HTTPS from the VPC only."
  }
}

run "endpoints_can_be_off" {
  command = plan

  variables {
    az_count             = 2
    enable_vpc_endpoints = false
  }

  assert {
    condition     = length(aws_vpc_endpoint.interface) == 0 && length(aws_vpc_endpoint.s3) == 0 && length(aws_security_group.endpoints) == 0
    error_message = "With enable_vpc_endpoints off there is no endpoint."
  }
}

run "flow_logs_go_to_cloudwatch_with_retention" {
  command = plan

  variables {
    az_count                = 2
    flow_log_retention_days = 90
  }

  assert {
    condition = (
      aws_flow_log.this[0].traffic_type == "ALL" &&
      aws_flow_log.this[0].log_destination_type == "cloud-watch-logs" &&
      aws_cloudwatch_log_group.flow_logs[0].name == "/vpc/rates-test/flow-logs" &&
      aws_cloudwatch_log_group.flow_logs[0].retention_in_days == 90
    )
    error_message = "All traffic is logged to /vpc/<name>/flow-logs, kept flow_log_retention_days."
  }

  assert {
    condition = (
      aws_iam_role.flow_logs[0].name == "rates-test-flow-logs" &&
      aws_iam_role.flow_logs[0].permissions_boundary == "arn:aws:iam::123456789012:policy/rates-ci/rates-test-boundary" &&
      [for s in data.aws_iam_policy_document.flow_logs_trust.statement : [for p in s.principals : p.identifiers]] == [[toset(["vpc-flow-logs.amazonaws.com"])]] &&
      [for s in data.aws_iam_policy_document.flow_logs.statement : s.actions] == [toset(["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"])]
    )
    error_message = "Only the flow logs service assumes the role, which may only write to the log group."
  }
}

run "rejects_an_unknown_retention" {
  command = plan

  variables {
    az_count                = 2
    flow_log_retention_days = 10
  }

  expect_failures = [var.flow_log_retention_days]
}
