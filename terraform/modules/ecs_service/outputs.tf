output "service_name" {
  description = "Name of the ECS service (the deploy workflow's service; the Service dimension of the application's metrics and alarms)."
  value       = aws_ecs_service.this.name
}

output "service_arn" {
  description = "ARN of the ECS service (the deploy role may update exactly this service)."
  value       = aws_ecs_service.this.id
}

output "security_group_id" {
  description = "ID of the tasks' security group (the database admits it; one-off tasks of the deploy run in the API's)."
  value       = aws_security_group.this.id
}
