# Internet-facing application load balancer in front of the ECS service.
# Only the application port (target_port) is ever routed to; the metrics port is not.

locals {
  https_enabled = var.certificate_arn != null

  # TLS 1.3 and 1.2, the policy AWS recommends.
  ssl_policy = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  # Seconds: between two health checks of a target; in-flight requests of a deregistered target
  # drain this long before ECS stops it; an idle connection stays open this long.
  health_check_interval = 15
  deregistration_delay  = 30
  idle_timeout          = 60
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-alb-"
  description = "Load balancer of ${var.name}: HTTP(S) in from the allowed ranges, application port out to the VPC"
  vpc_id      = var.vpc_id

  tags = { Name = "${var.name}-alb" }

  lifecycle {
    create_before_destroy = true
  }
}

# The API is public: by default the listeners accept requests from any address
# (ingress_cidr_blocks narrows it).
resource "aws_vpc_security_group_ingress_rule" "http" {
  for_each = toset(var.ingress_cidr_blocks)

  security_group_id = aws_security_group.this.id
  description       = "HTTP (forwarded, or redirected to HTTPS when a certificate is set)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "https" {
  for_each = local.https_enabled ? toset(var.ingress_cidr_blocks) : toset([])

  security_group_id = aws_security_group.this.id
  description       = "HTTPS"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "targets" {
  security_group_id = aws_security_group.this.id
  description       = "Requests and health checks to the tasks"
  ip_protocol       = "tcp"
  from_port         = var.target_port
  to_port           = var.target_port
  cidr_ipv4         = var.vpc_cidr_block
}

#trivy:ignore:AVD-AWS-0053 This is the public entry point of the API and must be internet-facing.
resource "aws_lb" "this" {
  name               = var.name
  load_balancer_type = "application"
  internal           = false
  subnets            = var.subnet_ids
  security_groups    = [aws_security_group.this.id]

  drop_invalid_header_fields = true
  desync_mitigation_mode     = "defensive"
  idle_timeout               = local.idle_timeout
  enable_deletion_protection = var.enable_deletion_protection

  dynamic "access_logs" {
    for_each = var.enable_access_logs ? [1] : []

    content {
      bucket  = aws_s3_bucket.access_logs[0].id
      prefix  = local.access_logs_prefix
      enabled = true
    }
  }

  tags = { Name = var.name }

  # The load balancer checks at once that it may write to the bucket.
  depends_on = [aws_s3_bucket_policy.access_logs]
}

# Named by prefix (at most 6 characters; AWS adds a unique suffix) and created before the old one
# is destroyed: a change that replaces the target group (port, protocol, target type) registers the
# new one with the listeners and the service first, instead of failing on a name still taken.
resource "aws_lb_target_group" "this" {
  name_prefix          = "api-"
  target_type          = "ip"
  protocol             = "HTTP"
  port                 = var.target_port
  vpc_id               = var.vpc_id
  deregistration_delay = local.deregistration_delay

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = var.health_check_path
    matcher             = "200"
    interval            = local.health_check_interval
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  tags = { Name = "${var.name}-api" }

  lifecycle {
    create_before_destroy = true
  }
}

# Port 80: forwards to the service when there is no certificate (dev without a domain), otherwise a
# permanent redirect to HTTPS.
#trivy:ignore:AVD-AWS-0054 Plain HTTP is only served when no certificate_arn is given (dev without a domain); with a certificate this listener redirects to HTTPS.
resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = local.https_enabled ? "redirect" : "forward"
    target_group_arn = local.https_enabled ? null : aws_lb_target_group.this.arn

    dynamic "redirect" {
      for_each = local.https_enabled ? [1] : []

      content {
        protocol    = "HTTPS"
        port        = "443"
        status_code = "HTTP_301"
      }
    }
  }

}

resource "aws_lb_listener" "https" {
  count = local.https_enabled ? 1 : 0

  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = local.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }

}
