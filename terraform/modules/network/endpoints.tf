# VPC endpoints: traffic of the tasks to AWS services stays inside the VPC instead of going
# through the NAT gateways (NAT data processing charges, and one more hop that can fail).
#   - S3 gateway endpoint (free): image layers (ECR stores them in S3), the ingestion bucket.
#   - interface endpoints (hourly per zone, plus data): ECR API and registry, CloudWatch Logs, SSM
#     (the password parameter, ECS Exec), SQS (the worker's queue), STS.
# Switchable (enable_vpc_endpoints): dev and staging may leave them off and use NAT.

locals {
  interface_endpoint_services = ["ecr.api", "ecr.dkr", "logs", "ssm", "sqs", "sts"]
}

data "aws_vpc_endpoint_service" "interface" {
  for_each = var.enable_vpc_endpoints ? toset(local.interface_endpoint_services) : toset([])

  service      = each.value
  service_type = "Interface"
}

data "aws_vpc_endpoint_service" "s3" {
  count = var.enable_vpc_endpoints ? 1 : 0

  service      = "s3"
  service_type = "Gateway"
}

resource "aws_vpc_endpoint" "s3" {
  count = var.enable_vpc_endpoints ? 1 : 0

  vpc_id            = aws_vpc.this.id
  service_name      = data.aws_vpc_endpoint_service.s3[0].service_name
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.private[*].id

  tags = { Name = "${var.name}-s3" }
}

resource "aws_security_group" "endpoints" {
  count = var.enable_vpc_endpoints ? 1 : 0

  name_prefix = "${var.name}-endpoints-"
  description = "Interface endpoints of ${var.name}: HTTPS in from the VPC"
  vpc_id      = aws_vpc.this.id

  tags = { Name = "${var.name}-endpoints" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_https" {
  count = var.enable_vpc_endpoints ? 1 : 0

  security_group_id = aws_security_group.endpoints[0].id
  description       = "HTTPS from the VPC to the AWS service endpoints"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = aws_vpc.this.cidr_block
}

resource "aws_vpc_endpoint" "interface" {
  for_each = data.aws_vpc_endpoint_service.interface

  vpc_id              = aws_vpc.this.id
  service_name        = each.value.service_name
  vpc_endpoint_type   = "Interface"
  subnet_ids          = aws_subnet.private[*].id
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true

  tags = { Name = "${var.name}-${each.key}" }
}
