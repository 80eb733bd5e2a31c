output "arn" {
  description = "ARN of the load balancer."
  value       = aws_lb.this.arn
}

output "arn_suffix" {
  description = "ARN suffix of the load balancer (the LoadBalancer dimension of its CloudWatch metrics)."
  value       = aws_lb.this.arn_suffix
}

output "dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Route 53 hosted zone ID of the load balancer (for alias records)."
  value       = aws_lb.this.zone_id
}

output "url" {
  description = "Base URL of the API: https:// when a certificate is set, http:// otherwise."
  value       = "${local.https_enabled ? "https" : "http"}://${aws_lb.this.dns_name}"
}

output "security_group_id" {
  description = "ID of the load balancer's security group (the source the service admits on its application port)."
  value       = aws_security_group.this.id
}

output "target_group_arn" {
  description = "ARN of the target group. It depends on the listeners, so an ECS service that uses it is only created once the target group is attached to the load balancer."
  value       = aws_lb_target_group.this.arn

  depends_on = [aws_lb_listener.http, aws_lb_listener.https]
}

output "target_group_arn_suffix" {
  description = "ARN suffix of the target group (the TargetGroup dimension of its CloudWatch metrics)."
  value       = aws_lb_target_group.this.arn_suffix
}

output "target_group_name" {
  description = "Name of the target group."
  value       = aws_lb_target_group.this.name
}

output "http_listener_arn" {
  description = "ARN of the port 80 listener."
  value       = aws_lb_listener.http.arn
}

output "https_listener_arn" {
  description = "ARN of the port 443 listener, or null without a certificate."
  value       = one(aws_lb_listener.https[*].arn)
}

output "access_logs_bucket" {
  description = "Bucket of the load balancer's access logs (objects under alb/AWSLogs/<account>/); null when enable_access_logs is off."
  value       = one(aws_s3_bucket.access_logs[*].id)
}
