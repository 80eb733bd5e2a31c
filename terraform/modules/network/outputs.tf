output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR block of the VPC."
  value       = aws_vpc.this.cidr_block
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

output "s3_prefix_list_id" {
  description = "Prefix list of the S3 gateway endpoint (destination of security group rules to S3); null when enable_vpc_endpoints is off."
  value       = one(aws_vpc_endpoint.s3[*].prefix_list_id)
}
