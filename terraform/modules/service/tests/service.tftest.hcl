# Plan-level tests of the service module with a mocked AWS provider.

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = {
      name = "eu-central-1"
    }
  }

  mock_data "aws_caller_identity" {
    defaults = {
      account_id = "123456789012"
    }
  }

  mock_data "aws_partition" {
    defaults = {
      partition = "aws"
    }
  }

  mock_resource "aws_cloudwatch_log_group" {
    override_during = plan
    defaults = {
      arn = "arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-test"
    }
  }
}

variables {
  name           = "rates-test"
  cluster_name   = "rates-test"
  service_name   = "rates-test-api"
  task_family    = "rates-test-api"
  log_group_name = "/ecs/rates-test"
  image          = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/rates-test:bootstrap"

  db_host                    = "rates-test.abcdefghijkl.eu-central-1.rds.amazonaws.com"
  db_name                    = "rates"
  db_user                    = "rates"
  db_password_parameter_name = "/rates/test/db/password"
  db_password_parameter_arn  = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/password"
  db_password_kms_key_arn    = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"
  database_security_group_id = "sg-0database000000000"

  vpc_id                  = "vpc-0123456789abcdef0"
  subnet_ids              = ["subnet-0000000000000000a", "subnet-0000000000000000b"]
  alb_security_group_id   = "sg-0alb0000000000000"
  target_group_arn        = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:targetgroup/rates-test-api/0123456789abcdef"
  alb_arn_suffix          = "app/rates-test/0123456789abcdef"
  target_group_arn_suffix = "targetgroup/rates-test-api/0123456789abcdef"
  ecr_repository_arn      = "arn:aws:ecr:eu-central-1:123456789012:repository/rates-test"

  permissions_boundary_arn = "arn:aws:iam::123456789012:policy/rates-ci/rates-test-boundary"
}

run "tasks_run_privately_behind_the_load_balancer" {
  command = plan

  assert {
    condition     = aws_ecs_service.this.network_configuration[0].assign_public_ip == false
    error_message = "Tasks must not get a public IP."
  }

  assert {
    condition     = aws_ecs_service.this.network_configuration[0].subnets == toset(["subnet-0000000000000000a", "subnet-0000000000000000b"])
    error_message = "Tasks must run in the given private subnets."
  }

  assert {
    condition     = aws_ecs_service.this.launch_type == "FARGATE"
    error_message = "The service runs on Fargate (the task definition's awsvpc mode is tested in modules/ecs_task)."
  }

  assert {
    condition = (
      length(aws_ecs_service.this.load_balancer) == 1 &&
      one(aws_ecs_service.this.load_balancer).container_port == 3000 &&
      one(aws_ecs_service.this.load_balancer).container_name == "rates"
    )
    error_message = "The load balancer must only reach the application port 3000 of the rates container."
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.http_from_alb.referenced_security_group_id == "sg-0alb0000000000000" &&
      aws_vpc_security_group_ingress_rule.http_from_alb.from_port == 3000 &&
      length(aws_vpc_security_group_ingress_rule.metrics) == 0
    )
    error_message = "Only the load balancer may reach the tasks (the metrics port is closed by default)."
  }

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.database.referenced_security_group_id == "sg-0database000000000" &&
      aws_vpc_security_group_egress_rule.database.from_port == 5432
    )
    error_message = "The tasks may open connections to the database's security group on 5432."
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
    condition     = aws_ecs_service.this.health_check_grace_period_seconds == 120
    error_message = "The grace period must cover migrations and the seed import."
  }

  assert {
    condition     = aws_ecs_service.this.enable_execute_command == false
    error_message = "ECS Exec is off by default."
  }

  assert {
    condition     = one(aws_ecs_cluster.this.setting).name == "containerInsights" && one(aws_ecs_cluster.this.setting).value == "enabled"
    error_message = "Container Insights must be enabled."
  }
}

run "counts_follow_the_variables" {
  command = plan

  variables {
    desired_count = 3
    min_capacity  = 3
    max_capacity  = 12
  }

  assert {
    condition     = aws_ecs_service.this.desired_count == 3
    error_message = "desired_count must reach the service."
  }

  assert {
    condition     = aws_appautoscaling_target.this.min_capacity == 3 && aws_appautoscaling_target.this.max_capacity == 12
    error_message = "min_capacity and max_capacity must reach the scalable target."
  }

  assert {
    condition = (
      aws_appautoscaling_policy.cpu.target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ECSServiceAverageCPUUtilization" &&
      aws_appautoscaling_policy.requests.target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].predefined_metric_type == "ALBRequestCountPerTarget" &&
      aws_appautoscaling_policy.requests.target_tracking_scaling_policy_configuration[0].predefined_metric_specification[0].resource_label == "app/rates-test/0123456789abcdef/targetgroup/rates-test-api/0123456789abcdef"
    )
    error_message = "Scaling must track CPU and requests per target of this target group."
  }
}

run "container_matches_the_binary_contract" {
  command = plan

  assert {
    condition     = jsondecode(module.task.container_definitions)[0].name == "rates"
    error_message = "The container must be named rates."
  }

  assert {
    condition     = jsondecode(module.task.container_definitions)[0].readonlyRootFilesystem == true
    error_message = "The root filesystem must be read-only."
  }

  assert {
    condition     = !contains(["0", "root", "0:0"], jsondecode(module.task.container_definitions)[0].user)
    error_message = "The container must not run as root."
  }

  assert {
    condition     = jsondecode(module.task.container_definitions)[0].stopTimeout == 30
    error_message = "The stop timeout must leave room for SHUTDOWN_TIMEOUT."
  }

  assert {
    condition     = [for p in jsondecode(module.task.container_definitions)[0].portMappings : p.containerPort] == [3000, 9090]
    error_message = "The container exposes the API on 3000 and metrics on 9090."
  }

  assert {
    condition = {
      for e in jsondecode(module.task.container_definitions)[0].environment : e.name => e.value
      } == {
      AWS_REGION                = "eu-central-1"
      DB_HOST                   = "rates-test.abcdefghijkl.eu-central-1.rds.amazonaws.com"
      DB_NAME                   = "rates"
      DB_PASSWORD_SSM_PARAMETER = "/rates/test/db/password"
      DB_PORT                   = "5432"
      DB_SSLMODE                = "verify-full"
      DB_SSLROOTCERT            = "/usr/share/rates/rds-ca.pem"
      DB_USER                   = "rates"
      HTTP_ADDR                 = ":3000"
      LOG_FORMAT                = "json"
      LOG_LEVEL                 = "info"
      METRICS_ADDR              = ":9090"
      SHUTDOWN_TIMEOUT          = "25s"
    }
    error_message = "The environment must match the binary's variables: no MIGRATE_ON_START, no SEED_FILE (both are one-off tasks of the deploy), verify-full TLS."
  }

  assert {
    condition     = jsondecode(module.task.container_definitions)[0].logConfiguration.options["awslogs-group"] == "/ecs/rates-test"
    error_message = "The container must log to its log group."
  }
}

run "task_role_reads_exactly_the_password_parameter" {
  command = plan

  assert {
    condition = [
      for s in jsondecode(module.task.task_role_policy).Statement : s
      if contains(flatten([s.Action]), "ssm:GetParameter")
      ] == [{
        Sid      = "ReadDatabasePassword"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter"]
        Resource = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/password"
    }]
    error_message = "The task role must read the password parameter and nothing else."
  }

  assert {
    condition = [
      for s in jsondecode(module.task.task_role_policy).Statement : s
      if contains(flatten([s.Action]), "kms:Decrypt")
      ] == [{
        Sid       = "DecryptDatabasePasswordThroughSsm"
        Effect    = "Allow"
        Action    = ["kms:Decrypt"]
        Resource  = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"
        Condition = { StringEquals = { "kms:ViaService" = "ssm.eu-central-1.amazonaws.com" } }
    }]
    error_message = "The task role may decrypt with the parameter's key through SSM only."
  }

  assert {
    condition     = length(jsondecode(module.task.task_role_policy).Statement) == 2
    error_message = "Without ECS Exec the task role has exactly these two statements."
  }

  assert {
    condition     = alltrue([for s in jsondecode(module.task.task_role_policy).Statement : s.Resource != "*"])
    error_message = "Without ECS Exec the task role has no wildcard resource."
  }
}

run "execution_role_is_limited_to_the_repository_and_log_group" {
  command = plan

  assert {
    condition = [
      for s in jsondecode(module.task.execution_role_policy).Statement : s.Resource
      if s.Sid == "PullFromServiceRepository"
    ] == ["arn:aws:ecr:eu-central-1:123456789012:repository/rates-test"]
    error_message = "Image pulls must be limited to the service's repository."
  }

  assert {
    condition = [
      for s in jsondecode(module.task.execution_role_policy).Statement : s.Resource
      if s.Sid == "WriteLogGroup"
    ] == ["arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-test:log-stream:*"]
    error_message = "Log writes must be limited to the service's log group."
  }

  assert {
    condition     = [for s in jsondecode(module.task.execution_role_policy).Statement : s.Sid if s.Resource == "*"] == ["EcrLogin"]
    error_message = "Only ecr:GetAuthorizationToken (no resource-level permissions) may use a wildcard."
  }
}

run "ecs_exec_adds_only_the_ssm_messages_channels" {
  command = plan

  variables {
    enable_execute_command = true
  }

  assert {
    condition     = aws_ecs_service.this.enable_execute_command == true
    error_message = "ECS Exec must be enabled on the service."
  }

  assert {
    condition = [
      for s in jsondecode(module.task.task_role_policy).Statement : s.Sid if s.Resource == "*"
    ] == ["EcsExecChannels"]
    error_message = "ECS Exec adds the SSM Messages statement and nothing else."
  }
}

run "rejects_a_desired_count_outside_the_scaling_range" {
  command = plan

  variables {
    desired_count = 5
    min_capacity  = 1
    max_capacity  = 2
  }

  expect_failures = [var.desired_count]
}

# HTTPS goes anywhere by default (AWS APIs through NAT); with VPC endpoints only to the VPC (the
# interface endpoints) and the S3 gateway endpoint's prefix list.
run "https_egress_follows_the_endpoints" {
  command = plan

  variables {
    https_egress_cidr_block      = "10.30.0.0/16"
    https_egress_prefix_list_ids = ["pl-6ea54007"]
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
    condition     = aws_vpc_security_group_egress_rule.https.cidr_ipv4 == "0.0.0.0/0" && length(aws_vpc_security_group_egress_rule.https_prefix_list) == 0
    error_message = "Without endpoints the tasks reach the AWS APIs through NAT, on 443 only."
  }
}
