output "arn" {
  description = "ARN of the load balancer (the web ACL's association)."
  value       = aws_lb.this.arn
}

output "arn_suffix" {
  description = "ARN suffix of the load balancer (the LoadBalancer dimension of its CloudWatch metrics)."
  value       = aws_lb.this.arn_suffix
}

output "dns_name" {
  description = "DNS name of the load balancer (target of the API's DNS record)."
  value       = aws_lb.this.dns_name
}

output "zone_id" {
  description = "Route 53 hosted zone ID of the load balancer (for alias records)."
  value       = aws_lb.this.zone_id
}

output "url" {
  description = "The load balancer's own URL: https:// when a certificate is set, http:// otherwise."
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
