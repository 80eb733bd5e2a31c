# Plan-level tests of the network module with a mocked AWS provider.

mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = {
      names = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
    }
  }
}

variables {
  name       = "rates-test"
  cidr_block = "10.10.0.0/16"
}

run "single_nat_gateway_over_two_zones" {
  command = plan

  variables {
    az_count           = 2
    single_nat_gateway = true
  }

  assert {
    condition     = output.azs == tolist(["eu-central-1a", "eu-central-1b"])
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
      output.public_subnet_cidr_blocks,
      output.private_subnet_cidr_blocks,
      output.database_subnet_cidr_blocks,
    ))) == 9
    error_message = "The subnet CIDR blocks must all differ."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.public : s.map_public_ip_on_launch == false])
    error_message = "Public subnets must not hand out public IPs automatically."
  }

  assert {
    condition     = output.database_subnet_cidr_blocks == tolist(["10.10.200.0/24", "10.10.201.0/24", "10.10.202.0/24"])
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
