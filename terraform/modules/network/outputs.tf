output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
}

output "azs" {
  description = "Availability zones the subnets are spread over, in subnet order."
  value       = local.azs
}

output "public_subnet_ids" {
  description = "IDs of the public subnets (ALB, NAT gateways), one per zone."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets (ECS tasks), one per zone."
  value       = aws_subnet.private[*].id
}

output "database_subnet_ids" {
  description = "IDs of the isolated database subnets, one per zone."
  value       = aws_subnet.database[*].id
}

output "public_subnet_cidr_blocks" {
  description = "CIDR blocks of the public subnets."
  value       = local.public_subnet_cidrs
}

output "private_subnet_cidr_blocks" {
  description = "CIDR blocks of the private subnets."
  value       = local.private_subnet_cidrs
}

output "database_subnet_cidr_blocks" {
  description = "CIDR blocks of the database subnets."
  value       = local.database_subnet_cidrs
}

output "nat_gateway_ids" {
  description = "IDs of the NAT gateways (one, or one per zone)."
  value       = aws_nat_gateway.this[*].id
}

output "nat_public_ips" {
  description = "Public IPv4 addresses of the NAT gateways: the source addresses of the tasks' outbound traffic."
  value       = aws_eip.nat[*].public_ip
}

output "private_route_table_ids" {
  description = "IDs of the private route tables, one per zone (for gateway VPC endpoints)."
  value       = aws_route_table.private[*].id
}

output "database_route_table_id" {
  description = "ID of the route table of the database subnets."
  value       = aws_route_table.database.id
}

output "vpc_endpoint_ids" {
  description = "IDs of the VPC endpoints by service (s3 for the gateway endpoint); empty when enable_vpc_endpoints is off."
  value = merge(
    { for k, e in aws_vpc_endpoint.interface : k => e.id },
    var.enable_vpc_endpoints ? { s3 = aws_vpc_endpoint.s3[0].id } : {},
  )
}

output "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint (destination of security group rules to S3); null when enable_vpc_endpoints is off."
  value       = one(aws_vpc_endpoint.s3[*].prefix_list_id)
}

output "flow_log_group_name" {
  description = "CloudWatch log group of the VPC flow logs (null when enable_flow_logs is off)."
  value       = one(aws_cloudwatch_log_group.flow_logs[*].name)
}
