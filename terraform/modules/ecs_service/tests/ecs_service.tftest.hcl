# Plan-level tests of the ecs_service module with a mocked AWS provider: the API's configuration
# (behind a load balancer) by default, the worker's (on a queue) where a run says so.

mock_provider "aws" {}

variables {
  name                = "rates-test"
  service_name        = "rates-test-api"
  cluster_arn         = "arn:aws:ecs:eu-central-1:123456789012:cluster/rates-test"
  cluster_name        = "rates-test"
  task_definition_arn = "arn:aws:ecs:eu-central-1:123456789012:task-definition/rates-test-api:1"

  vpc_id                     = "vpc-0123456789abcdef0"
  subnet_ids                 = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
  database_security_group_id = "sg-0database000000000"
  https_egress               = { cidr_block = "0.0.0.0/0", prefix_list_ids = [] }

  desired_count = 1
  min_capacity  = 1
  max_capacity  = 2
  load_balancer = {
    target_group_arn  = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/rates-test-api/0123456789abcdef"
    security_group_id = "sg-0alb0000000000000"
    container_name    = "rates"
    container_port    = 3000
    resource_label    = "app/rates-test/0123456789abcdef/targetgroup/rates-test-api/0123456789abcdef"
  }
}

run "tasks_run_privately_behind_the_load_balancer" {
  command = plan

  assert {
    condition = (
      aws_ecs_service.this.network_configuration[0].assign_public_ip == false &&
      aws_ecs_service.this.network_configuration[0].subnets == toset(["subnet-0000000000000000a", "subnet-0000000000000000b"])
    )
    error_message = "Tasks must run in the given private subnets, without a public IP."
  }

  assert {
    condition = (
      aws_ecs_service.this.launch_type == "FARGATE" &&
      aws_ecs_service.this.cluster == "arn:aws:ecs:eu-central-1:123456789012:cluster/rates-test" &&
      aws_ecs_service.this.task_definition == "arn:aws:ecs:eu-central-1:123456789012:task-definition/rates-test-api:1" &&
      aws_ecs_service.this.name == "rates-test-api"
    )
    error_message = "The service runs the given task definition on Fargate in the given cluster."
  }

  assert {
    condition = [for lb in aws_ecs_service.this.load_balancer : [lb.target_group_arn, lb.container_name, lb.container_port]] == [
      ["arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/rates-test-api/0123456789abcdef", "rates", 3000]
    ]
    error_message = "The load balancer must only reach the application port 3000 of the rates container."
  }

  assert {
    condition = (
      length(aws_vpc_security_group_ingress_rule.http_from_alb) == 1 &&
      aws_vpc_security_group_ingress_rule.http_from_alb[0].referenced_security_group_id == "sg-0alb0000000000000" &&
      aws_vpc_security_group_ingress_rule.http_from_alb[0].from_port == 3000 &&
      aws_vpc_security_group_ingress_rule.http_from_alb[0].to_port == 3000
    )
    error_message = "Only the load balancer may reach the tasks, on the application port (nothing opens the metrics port)."
  }

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.database.referenced_security_group_id == "sg-0database000000000" &&
      aws_vpc_security_group_egress_rule.database.from_port == 5432
    )
    error_message = "The tasks may open connections to the database's security group on 5432."
  }

  assert {
    condition     = aws_security_group.this.name_prefix == "rates-test-service-" && aws_security_group.this.description == "Tasks of rates-test-api: application port from the load balancer only"
    error_message = "The API's group keeps the name prefix and description it was created with (changing either replaces it)."
  }
}

run "safe_rolling_deployments" {
  command = plan

  assert {
    condition     = aws_ecs_service.this.deployment_circuit_breaker[0].enable && aws_ecs_service.this.deployment_circuit_breaker[0].rollback
    error_message = "The deployment circuit breaker must be on, with rollback."
  }

  assert {
    condition     = aws_ecs_service.this.deployment_minimum_healthy_percent == 100 && aws_ecs_service.this.deployment_maximum_percent == 200
    error_message = "Deployments must keep 100% healthy and may double the tasks."
  }

  assert {
    condition     = aws_ecs_service.this.health_check_grace_period_seconds == 120 && aws_ecs_service.this.availability_zone_rebalancing == "ENABLED"
    error_message = "Behind the load balancer, new tasks get 120 s before failing health checks count, and tasks are rebalanced across zones."
  }

  assert {
    condition     = aws_ecs_service.this.enable_execute_command == false
    error_message = "ECS Exec is off by default."
  }
}

run "counts_and_target_tracking_follow_the_variables" {
  command = plan

  variables {
    desired_count = 3
    min_capacity  = 3
    max_capacity  = 12
  }

  assert {
    condition = (
      aws_ecs_service.this.desired_count == 3 &&
      aws_appautoscaling_target.this.min_capacity == 3 && aws_appautoscaling_target.this.max_capacity == 12 &&
      aws_appautoscaling_target.this.resource_id == "service/rates-test/rates-test-api"
    )
    error_message = "desired_count, min_capacity and max_capacity must reach the service and its scalable target."
  }

  assert {
    condition = (
      aws_appautoscaling_policy.cpu[0].name == "rates-test-cpu" &&
      aws_appautoscaling_policy.cpu[0].target_tracking_scaling_policy_configuration[0].target_value == 60 &&
      aws_appautoscaling_policy.cpu[0].target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ECSServiceAverageCPUUtilization" &&
      aws_appautoscaling_policy.requests[0].name == "rates-test-requests" &&
      aws_appautoscaling_policy.requests[0].target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ALBRequestCountPerTarget" &&
      aws_appautoscaling_policy.requests[0].target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].resource_label == "app/rates-test/0123456789abcdef/targetgroup/rates-test-api/0123456789abcdef"
    )
    error_message = "Scaling must track CPU and requests per target of this target group."
  }

  assert {
    condition     = length(aws_appautoscaling_policy.scale_out) == 0 && length(aws_cloudwatch_metric_alarm.backlog) == 0 && length(aws_cloudwatch_metric_alarm.idle) == 0
    error_message = "Behind a load balancer there is no queue scaling."
  }
}

run "ecs_exec_follows_the_variable" {
  command = plan

  variables {
    enable_execute_command = true
  }

  assert {
    condition     = aws_ecs_service.this.enable_execute_command == true
    error_message = "ECS Exec must be enabled on the service."
  }
}

# HTTPS goes anywhere by default (AWS APIs through NAT); with VPC endpoints only to the VPC (the
# interface endpoints) and the S3 gateway endpoint's prefix list.
run "https_egress_follows_the_endpoints" {
  command = plan

  variables {
    https_egress = { cidr_block = "10.30.0.0/16", prefix_list_ids = ["pl-6ea54007"] }
  }

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.https.cidr_ipv4 == "10.30.0.0/16" &&
      aws_vpc_security_group_egress_rule.https.from_port == 443 &&
      length(aws_vpc_security_group_egress_rule.https_prefix_list) == 1 &&
      aws_vpc_security_group_egress_rule.https_prefix_list[0].prefix_list_id == "pl-6ea54007" &&
      aws_vpc_security_group_egress_rule.https_prefix_list[0].from_port == 443 &&
      aws_vpc_security_group_egress_rule.https_prefix_list[0].to_port == 443
    )
    error_message = "With endpoints the tasks reach HTTPS in the VPC and S3's prefix list only."
  }
}

run "https_egress_without_endpoints" {
  command = plan

  assert {
    condition     = aws_vpc_security_group_egress_rule.https.cidr_ipv4 == "0.0.0.0/0" && aws_vpc_security_group_egress_rule.https.to_port == 443 && length(aws_vpc_security_group_egress_rule.https_prefix_list) == 0
    error_message = "Without endpoints the tasks reach the AWS APIs through NAT, on 443 only."
  }
}

run "worker_runs_privately_without_load_balancer" {
  command = plan

  variables {
    name          = "rates-test-worker"
    service_name  = "rates-test-worker"
    load_balancer = null
    queue_name    = "rates-test-ingest"
    desired_count = 0
    min_capacity  = 0
  }

  assert {
    condition = (
      aws_ecs_service.this.network_configuration[0].assign_public_ip == false &&
      length(aws_ecs_service.this.load_balancer) == 0 &&
      aws_ecs_service.this.health_check_grace_period_seconds == null
    )
    error_message = "The worker runs without public IP and without load balancer."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.http_from_alb) == 0
    error_message = "Nothing may connect to the worker."
  }

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.database.referenced_security_group_id == "sg-0database000000000" &&
      aws_vpc_security_group_egress_rule.database.from_port == 5432
    )
    error_message = "The worker may open connections to the database's security group on 5432."
  }

  assert {
    condition = (
      aws_ecs_service.this.deployment_circuit_breaker[0].enable && aws_ecs_service.this.deployment_circuit_breaker[0].rollback &&
      aws_ecs_service.this.deployment_minimum_healthy_percent == 100
    )
    error_message = "The worker's deployments keep every task and roll back on failure."
  }

  assert {
    condition     = aws_ecs_service.this.availability_zone_rebalancing == "DISABLED"
    error_message = "Zone rebalancing must not stop busy workers."
  }

  assert {
    condition     = aws_security_group.this.name_prefix == "rates-test-worker-" && aws_security_group.this.tags.Name == "rates-test-worker"
    error_message = "The worker's group keeps the name prefix it was created with."
  }
}

# The queue carries batches and the parts a multi-part batch fans out into: both are visible
# messages, so both add tasks, up to max_capacity.
run "scales_on_queue_depth_from_zero" {
  command = plan

  variables {
    name          = "rates-test-worker"
    service_name  = "rates-test-worker"
    load_balancer = null
    queue_name    = "rates-test-ingest"
    desired_count = 0
    min_capacity  = 0
    max_capacity  = 2
  }

  assert {
    condition = (
      aws_ecs_service.this.desired_count == 0 &&
      aws_appautoscaling_target.this.min_capacity == 0 &&
      aws_appautoscaling_target.this.max_capacity == 2 &&
      aws_appautoscaling_target.this.resource_id == "service/rates-test/rates-test-worker"
    )
    error_message = "The worker scales between 0 and max_capacity tasks."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.backlog[0].alarm_name == "rates-test-worker-backlog" &&
      aws_cloudwatch_metric_alarm.backlog[0].metric_name == "ApproximateNumberOfMessagesVisible" &&
      aws_cloudwatch_metric_alarm.backlog[0].dimensions == tomap({ QueueName = "rates-test-ingest" }) &&
      aws_cloudwatch_metric_alarm.backlog[0].comparison_operator == "GreaterThanOrEqualToThreshold" &&
      aws_cloudwatch_metric_alarm.backlog[0].threshold == 1
    )
    error_message = "Scale-out must react to one visible message on the queue."
  }

  assert {
    condition = (
      aws_appautoscaling_policy.scale_out[0].name == "rates-test-worker-scale-out" &&
      one(aws_appautoscaling_policy.scale_out[0].step_scaling_policy_configuration).adjustment_type == "ChangeInCapacity" &&
      toset([for s in one(aws_appautoscaling_policy.scale_out[0].step_scaling_policy_configuration).step_adjustment : s.scaling_adjustment]) == toset([1, 2, 4])
    )
    error_message = "The scale-out policy only adds tasks, more the longer the queue."
  }

  assert {
    condition = (
      one(aws_appautoscaling_policy.scale_in[0].step_scaling_policy_configuration).adjustment_type == "ExactCapacity" &&
      [for s in one(aws_appautoscaling_policy.scale_in[0].step_scaling_policy_configuration).step_adjustment : s.scaling_adjustment] == [0] &&
      aws_cloudwatch_metric_alarm.idle[0].evaluation_periods == 15
    )
    error_message = "After 15 idle minutes the worker goes back to its minimum."
  }

  assert {
    condition = toset([
      for q in aws_cloudwatch_metric_alarm.idle[0].metric_query : [one(q.metric).metric_name, one(q.metric).dimensions.QueueName] if length(q.metric) > 0
    ]) == toset([["ApproximateNumberOfMessagesVisible", "rates-test-ingest"], ["ApproximateNumberOfMessagesNotVisible", "rates-test-ingest"]])
    error_message = "Idle means no message waiting and none in flight on the queue."
  }

  assert {
    condition     = length(aws_appautoscaling_policy.cpu) == 0 && length(aws_appautoscaling_policy.requests) == 0
    error_message = "On a queue there is no target tracking."
  }
}

run "prod_like_scaling_keeps_one_worker" {
  command = plan

  variables {
    name          = "rates-test-worker"
    service_name  = "rates-test-worker"
    load_balancer = null
    queue_name    = "rates-test-ingest"
    desired_count = 1
    min_capacity  = 1
    max_capacity  = 6
  }

  assert {
    condition = (
      aws_ecs_service.this.desired_count == 1 &&
      aws_appautoscaling_target.this.min_capacity == 1 &&
      aws_appautoscaling_target.this.max_capacity == 6 &&
      [for s in one(aws_appautoscaling_policy.scale_in[0].step_scaling_policy_configuration).step_adjustment : s.scaling_adjustment] == [1]
    )
    error_message = "With min_capacity 1 one worker always polls, and scale-in stops at 1."
  }
}

run "rejects_a_desired_count_outside_the_scaling_range" {
  command = plan

  variables {
    desired_count = 5
  }

  expect_failures = [var.desired_count]
}

run "rejects_no_task_behind_a_load_balancer" {
  command = plan

  variables {
    desired_count = 0
    min_capacity  = 0
  }

  expect_failures = [var.min_capacity]
}

run "rejects_a_maximum_below_the_minimum" {
  command = plan

  variables {
    desired_count = 3
    min_capacity  = 3
    max_capacity  = 2
  }

  expect_failures = [var.max_capacity]
}

run "rejects_both_a_load_balancer_and_a_queue" {
  command = plan

  variables {
    queue_name = "rates-test-ingest"
  }

  expect_failures = [var.queue_name]
}
