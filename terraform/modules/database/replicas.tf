# Read replicas of the instance (RDS PostgreSQL streaming replication), for the /rates reads of
# the API (DB_READ_HOST). Same engine, parameter group, security group, key and subnets as the
# primary; each replica has its own endpoint. Why replicas and not Aurora: see docs/design.md
# (read scaling).

resource "aws_db_instance" "replica" {
  count = var.read_replica_count

  identifier          = "${var.identifier}-replica-${count.index + 1}"
  replicate_source_db = aws_db_instance.this.identifier
  instance_class      = var.instance_class

  # Inherited from the source, stated so that nothing can weaken them on a replica.
  storage_encrypted      = true
  kms_key_id             = aws_kms_key.this.arn
  max_allocated_storage  = var.max_allocated_storage
  vpc_security_group_ids = [aws_security_group.this.id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name
  port                   = local.port

  # A replica is rebuilt from the primary, never restored: no backups, no final snapshot.
  backup_retention_period = 0
  skip_final_snapshot     = true
  deletion_protection     = false

  auto_minor_version_upgrade = true
  apply_immediately          = var.apply_immediately

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  performance_insights_retention_period = local.performance_insights_retention_period

  tags = { Name = "${var.identifier}-replica-${count.index + 1}", Role = "read-replica" }
}
