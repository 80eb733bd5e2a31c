# RDS PostgreSQL in the isolated database subnets, plus the SSM SecureString that hands the master
# password to the service. The password is ephemeral: it only reaches write-only arguments, so it is
# never written to the Terraform state or to a plan file.

locals {
  # A major version: RDS picks its default minor and upgrades minors automatically. A major
  # upgrade (allow_major_version_upgrade) is a change of this file, planned on purpose.
  engine_version = "17"
  # The database and its master user (the migration task connects as it; the services have roles
  # of their own), and PostgreSQL's port.
  db_name  = "rates"
  username = "rates"
  port     = 5432
  # UTC: daily backups, then the weekly maintenance window after them; Performance Insights keeps
  # 7 days (the free tier).
  backup_window                         = "02:00-03:00"
  maintenance_window                    = "sun:03:30-sun:04:30"
  performance_insights_retention_period = 7

  engine_major     = split(".", local.engine_version)[0]
  parameter_family = "postgres${local.engine_major}"
  log_exports      = ["postgresql", "upgrade"]

  login_roles = {
    api    = { role = var.api_role_name, parameter_name = var.api_password_parameter_name }
    worker = { role = var.worker_role_name, parameter_name = var.worker_password_parameter_name }
  }
}

################################################################################
# Encryption key (storage, Performance Insights, password parameter)
################################################################################

resource "aws_kms_key" "this" {
  description             = "${var.identifier}: RDS storage, Performance Insights and the master password parameter"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_in_days

  tags = { Name = "${var.identifier}-db" }
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.identifier}-db"
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# Network
################################################################################

resource "aws_db_subnet_group" "this" {
  name        = var.identifier
  description = "Isolated database subnets of ${var.identifier}"
  subnet_ids  = var.subnet_ids

  tags = { Name = var.identifier }
}

resource "aws_security_group" "this" {
  name_prefix = "${var.identifier}-db-"
  description = "PostgreSQL of ${var.identifier}: port ${local.port} from the allowed security groups only"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.identifier}-db" }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  for_each = var.allowed_security_group_ids

  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from ${each.key}"
  ip_protocol                  = "tcp"
  from_port                    = local.port
  to_port                      = local.port
  referenced_security_group_id = each.value
}

################################################################################
# Parameters and logs
################################################################################

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.identifier}-${local.parameter_family}-"
  family      = local.parameter_family
  description = "${var.identifier}: TLS required for every connection"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  tags = { Name = var.identifier }

  lifecycle {
    create_before_destroy = true
  }
}

# RDS would create these log groups itself, without retention.
resource "aws_cloudwatch_log_group" "this" {
  for_each = toset(local.log_exports)

  name              = "/aws/rds/instance/${var.identifier}/${each.value}"
  retention_in_days = var.log_retention_days

}

################################################################################
# Instance
################################################################################

resource "aws_db_instance" "this" {
  identifier     = var.identifier
  engine         = "postgres"
  engine_version = local.engine_version
  instance_class = var.instance_class

  db_name  = local.db_name
  username = local.username
  port     = local.port

  # Write-only: sent on create and whenever password_wo_version changes, never stored.
  password_wo         = var.master_password
  password_wo_version = var.master_password_version

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.this.arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.this.id]
  publicly_accessible    = false
  multi_az               = var.multi_az
  parameter_group_name   = aws_db_parameter_group.this.name

  backup_retention_period   = var.backup_retention_period
  backup_window             = local.backup_window
  maintenance_window        = local.maintenance_window
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = var.skip_final_snapshot
  final_snapshot_identifier = var.skip_final_snapshot ? null : "${var.identifier}-final"

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = var.apply_immediately

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  performance_insights_retention_period = local.performance_insights_retention_period

  enabled_cloudwatch_logs_exports = local.log_exports

  tags = { Name = var.identifier }

  depends_on = [aws_cloudwatch_log_group.this]
}

################################################################################
# Master password for the service
################################################################################

resource "aws_ssm_parameter" "password" {
  name        = var.password_parameter_name
  description = "Master password of the ${var.identifier} PostgreSQL instance (written by Terraform, read by the service at start)"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn

  # Write-only: same value and same version as aws_db_instance.this.password_wo.
  value_wo         = var.master_password
  value_wo_version = var.master_password_version


  lifecycle {
    # A new instance (KMS key, user name, snapshot restore, -replace) receives the password
    # generated in that same apply, while an unchanged version would leave the old one here and
    # lock every task out. resource_id changes exactly when the instance is replaced, and a
    # replaced parameter is created with the same value as the new instance.
    replace_triggered_by = [aws_db_instance.this.resource_id]
  }
}

################################################################################
# Passwords of the services' login roles
################################################################################

# The API and the worker connect with roles of their own (least privilege, see
# db/migrations/000033_baseline.up.sql). Their passwords are generated like the master password
# and kept only here; the migration task, connected as the master user, creates or updates the
# roles with them on every run (`rates migrate up` with DB_API_ROLE / DB_WORKER_ROLE), so a new
# instance gets them back with the deploy that follows.
resource "aws_ssm_parameter" "role_password" {
  for_each = local.login_roles

  name        = each.value.parameter_name
  description = "Password of the ${each.value.role} database role of ${var.identifier} (${each.key}; written by Terraform, set on the role by the migration task, read by the ${each.key} at start)"
  type        = "SecureString"
  key_id      = aws_kms_key.this.arn

  value_wo         = each.key == "api" ? var.api_password : var.worker_password
  value_wo_version = var.role_password_version

}
