output "instance_identifier" {
  description = "Identifier of the DB instance."
  value       = aws_db_instance.this.identifier
}

output "instance_arn" {
  description = "ARN of the DB instance."
  value       = aws_db_instance.this.arn
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

output "parameter_group_name" {
  description = "Name of the DB parameter group (rds.force_ssl = 1)."
  value       = aws_db_parameter_group.this.name
}

output "allowed_security_group_ids" {
  description = "Security groups admitted on the database port, by label (read from the ingress rules)."
  value       = { for k, rule in aws_vpc_security_group_ingress_rule.postgres : k => rule.referenced_security_group_id }
}

output "instance_settings" {
  description = "Protection and availability settings of the DB instance as planned (for reviews and tests)."
  value = {
    engine_version            = aws_db_instance.this.engine_version
    instance_class            = aws_db_instance.this.instance_class
    publicly_accessible       = aws_db_instance.this.publicly_accessible
    storage_encrypted         = aws_db_instance.this.storage_encrypted
    multi_az                  = aws_db_instance.this.multi_az
    deletion_protection       = aws_db_instance.this.deletion_protection
    skip_final_snapshot       = aws_db_instance.this.skip_final_snapshot
    final_snapshot_identifier = aws_db_instance.this.final_snapshot_identifier
    backup_retention_period   = aws_db_instance.this.backup_retention_period
    password_wo_version       = aws_db_instance.this.password_wo_version
  }
}

output "replica_addresses" {
  description = "Host names of the read replicas, in order (DB_READ_HOST of the API is the first one)."
  value       = aws_db_instance.replica[*].address
}

output "replica_identifiers" {
  description = "Identifiers of the read replicas (for their CloudWatch metrics, ReplicaLag among them)."
  value       = aws_db_instance.replica[*].identifier
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
