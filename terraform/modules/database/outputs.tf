output "instance_identifier" {
  description = "Identifier of the DB instance."
  value       = aws_db_instance.this.identifier
}

output "address" {
  description = "Host name of the DB instance (DB_HOST of the service)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the DB instance (DB_PORT of the service)."
  value       = aws_db_instance.this.port
}

output "db_name" {
  description = "Name of the database (DB_NAME of the service)."
  value       = aws_db_instance.this.db_name
}

output "username" {
  description = "Master user name (DB_USER of the migration task; the services connect with their own roles)."
  value       = aws_db_instance.this.username
}

output "security_group_id" {
  description = "ID of the database's security group."
  value       = aws_security_group.this.id
}

output "password_parameter_name" {
  description = "Name of the SSM SecureString holding the master password (DB_PASSWORD_SSM_PARAMETER of the migration task)."
  value       = aws_ssm_parameter.password.name
}

output "password_parameter_arn" {
  description = "ARN of the SSM SecureString holding the master password (only the migration task may read it)."
  value       = aws_ssm_parameter.password.arn
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting the storage, Performance Insights and the password parameter (the task role may decrypt with it through SSM only)."
  value       = aws_kms_key.this.arn
}

output "replica_addresses" {
  description = "Host names of the read replicas, in order (DB_READ_HOST of the API is the first one)."
  value       = aws_db_instance.replica[*].address
}

output "api_role_name" {
  description = "Login role of the API (DB_USER of the API; DB_API_ROLE of the migration task)."
  value       = var.api_role_name
}

output "worker_role_name" {
  description = "Login role of the worker (DB_USER of the worker; DB_WORKER_ROLE of the migration task)."
  value       = var.worker_role_name
}

output "api_password_parameter_name" {
  description = "Name of the SSM SecureString holding the API role's password."
  value       = aws_ssm_parameter.role_password["api"].name
}

output "api_password_parameter_arn" {
  description = "ARN of the SSM SecureString holding the API role's password (the API's task role reads it and nothing else; the migration task reads it too)."
  value       = aws_ssm_parameter.role_password["api"].arn
}

output "worker_password_parameter_name" {
  description = "Name of the SSM SecureString holding the worker role's password."
  value       = aws_ssm_parameter.role_password["worker"].name
}

output "worker_password_parameter_arn" {
  description = "ARN of the SSM SecureString holding the worker role's password (the worker's task role reads it and nothing else; the migration task reads it too)."
  value       = aws_ssm_parameter.role_password["worker"].arn
}
