# Plan-level tests of the ecs_task module with a mocked AWS provider.

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
  service_name   = "rates-test-api"
  task_family    = "rates-test-api"
  log_group_name = "/ecs/rates-test"
  image          = "123456789012.dkr.ecr.eu-central-1.amazonaws.com/rates-test:bootstrap"
  environment    = { B = "2", A = "1" }
  port_mappings = [
    { name = "http", port = 3000, app_protocol = "http" },
    { name = "metrics", port = 9090 },
  ]

  ecr_repository_arn        = "arn:aws:ecr:eu-central-1:123456789012:repository/rates-test"
  db_password_parameter_arn = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/password"
  db_password_kms_key_arn   = "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000"

  permissions_boundary_arn = "arn:aws:iam::123456789012:policy/rates-ci/rates-test-boundary"
}

run "fargate_task_with_one_hardened_container" {
  command = plan

  assert {
    condition = (
      aws_ecs_task_definition.this.family == "rates-test-api" &&
      aws_ecs_task_definition.this.requires_compatibilities == toset(["FARGATE"]) &&
      aws_ecs_task_definition.this.network_mode == "awsvpc" &&
      aws_ecs_task_definition.this.cpu == "256" && aws_ecs_task_definition.this.memory == "512" &&
      one(aws_ecs_task_definition.this.runtime_platform).operating_system_family == "LINUX" &&
      one(aws_ecs_task_definition.this.runtime_platform).cpu_architecture == "X86_64"
    )
    error_message = "The task runs on Fargate in awsvpc mode, Linux, with the given family and sizes."
  }

  assert {
    condition     = aws_ecs_task_definition.this.skip_destroy == true
    error_message = "Older revisions must stay registered (deployments may still use them)."
  }

  assert {
    condition = (
      length(jsondecode(aws_ecs_task_definition.this.container_definitions)) == 1 &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].name == "rates" &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].essential == true &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].readonlyRootFilesystem == true &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].user == "65532:65532" &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].stopTimeout == 30 &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].linuxParameters.initProcessEnabled == true
    )
    error_message = "One essential, non-root container with a read-only root filesystem and an init process."
  }

  assert {
    condition = (
      [for v in aws_ecs_task_definition.this.volume : v.name] == ["tmp"] &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].mountPoints == [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    )
    error_message = "/tmp is the only writable path (a scratch volume)."
  }

  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].portMappings == [
      { name = "http", containerPort = 3000, hostPort = 3000, protocol = "tcp", appProtocol = "http" },
      { name = "metrics", containerPort = 9090, hostPort = 9090, protocol = "tcp" },
    ]
    error_message = "Port mappings are TCP with hostPort = containerPort, and appProtocol only where given."
  }

  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment == [
      { name = "A", value = "1" }, { name = "AWS_REGION", value = "eu-central-1" }, { name = "B", value = "2" },
      { name = "DB_SSLMODE", value = "verify-full" }, { name = "DB_SSLROOTCERT", value = "/usr/share/rates/rds-ca.pem" },
    ]
    error_message = "The environment is sorted by name, as ECS returns it, and verifies the database's certificate against the image's RDS bundle."
  }

  assert {
    condition     = !can(jsondecode(aws_ecs_task_definition.this.container_definitions)[0].command)
    error_message = "Without a command the image's CMD applies."
  }

  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].logConfiguration == {
      logDriver = "awslogs"
      options   = { awslogs-group = "/ecs/rates-test", awslogs-region = "eu-central-1", awslogs-stream-prefix = "ecs" }
    }
    error_message = "The container logs to the module's log group."
  }

  assert {
    condition     = aws_cloudwatch_log_group.this.name == "/ecs/rates-test" && aws_cloudwatch_log_group.this.retention_in_days == 30
    error_message = "The log group has the given name and retention."
  }
}

run "command_and_sizes_follow_the_variables" {
  command = plan

  variables {
    command      = ["worker"]
    cpu          = 512
    memory       = 1024
    stop_timeout = 120
  }

  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].command == ["worker"] &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].stopTimeout == 120 &&
      aws_ecs_task_definition.this.cpu == "512" && aws_ecs_task_definition.this.memory == "1024" &&
      one(aws_ecs_task_definition.this.runtime_platform).cpu_architecture == "X86_64"
    )
    error_message = "command, stop_timeout, cpu and memory must reach the task definition (on the architecture the deploy builds for)."
  }
}

run "roles_are_named_after_the_prefix_and_trust_ecs_of_this_account" {
  command = plan

  assert {
    condition     = aws_iam_role.execution.name == "rates-test-task-execution" && aws_iam_role.task.name == "rates-test-task"
    error_message = "The roles are <name>-task-execution and <name>-task."
  }

  assert {
    condition = alltrue([
      for r in [aws_iam_role.execution, aws_iam_role.task] : r.permissions_boundary == "arn:aws:iam::123456789012:policy/rates-ci/rates-test-boundary"
    ])
    error_message = "Both roles carry the environment's permissions boundary (the apply role may create no role without it)."
  }

  assert {
    condition = alltrue([
      for r in [aws_iam_role.execution, aws_iam_role.task] : jsondecode(r.assume_role_policy).Statement == [{
        Sid       = "EcsTasksOfThisAccount"
        Effect    = "Allow"
        Principal = { Service = "ecs-tasks.amazonaws.com" }
        Action    = "sts:AssumeRole"
        Condition = {
          StringEquals = { "aws:SourceAccount" = "123456789012" }
          ArnLike      = { "aws:SourceArn" = "arn:aws:ecs:eu-central-1:123456789012:*" }
        }
      }]
    ])
    error_message = "Only ECS tasks of this account and region may assume the roles."
  }

  assert {
    condition     = aws_iam_role_policy.task.name == "read-database-password" && aws_iam_role.task.description == "Task role of rates-test-api: reads the database password parameter"
    error_message = "The task role's policy name and description default to the password read."
  }
}

run "execution_role_is_limited_to_the_repository_and_log_group" {
  command = plan

  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.execution.policy).Statement : s.Sid => [s.Action, s.Resource]
      } == {
      EcrLogin                  = [["ecr:GetAuthorizationToken"], "*"]
      PullFromServiceRepository = [["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"], "arn:aws:ecr:eu-central-1:123456789012:repository/rates-test"]
      WriteLogGroup             = [["logs:CreateLogStream", "logs:PutLogEvents"], "arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-test:log-stream:*"]
    }
    error_message = "The execution role pulls from the one repository and writes the one log group; only ecr:GetAuthorizationToken uses a wildcard."
  }
}

run "task_role_reads_only_the_password_by_default" {
  command = plan

  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.task.policy).Statement : s.Sid => [s.Action, s.Resource, try(s.Condition, null)]
      } == {
      ReadDatabasePassword              = [["ssm:GetParameter"], "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/password", null]
      DecryptDatabasePasswordThroughSsm = [["kms:Decrypt"], "arn:aws:kms:eu-central-1:123456789012:key/00000000-0000-0000-0000-000000000000", { StringEquals = { "kms:ViaService" = "ssm.eu-central-1.amazonaws.com" } }]
    }
    error_message = "Without further statements or ECS Exec, the task role reads the password parameter and decrypts it through SSM, nothing else."
  }
}

run "further_statements_come_first_and_ecs_exec_adds_only_the_channels" {
  command = plan

  variables {
    enable_execute_command = true
    task_policy_name       = "ingest-batches"
    task_policy_statements = jsonencode([
      { Sid = "ConsumeQueue", Effect = "Allow", Action = ["sqs:ReceiveMessage"], Resource = "arn:aws:sqs:eu-central-1:123456789012:q" },
    ])
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.task.policy).Statement : s.Sid
    ] == ["ConsumeQueue", "ReadDatabasePassword", "DecryptDatabasePasswordThroughSsm", "EcsExecChannels"]
    error_message = "The caller's statements, then the password statements, then the ECS Exec channels."
  }

  assert {
    condition     = [for s in jsondecode(aws_iam_role_policy.task.policy).Statement : s.Sid if s.Resource == "*"] == ["EcsExecChannels"]
    error_message = "ECS Exec adds the SSM Messages statement and nothing else."
  }

  assert {
    condition     = aws_iam_role_policy.task.name == "ingest-batches"
    error_message = "task_policy_name names the inline policy."
  }
}

run "ecs_exec_gets_writable_volumes_for_the_ssm_agent" {
  command = plan

  variables {
    enable_execute_command = true
  }

  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].readonlyRootFilesystem &&
      [for m in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].mountPoints : [m.containerPath, m.readOnly]] == [
        ["/tmp", false], ["/var/lib/amazon", false], ["/var/log/amazon", false],
      ] &&
      toset([for v in aws_ecs_task_definition.this.volume : v.name]) == toset(["tmp", "ssm-agent-state", "ssm-agent-logs"])
    )
    error_message = "With ECS Exec on a read-only root, the SSM agent's state and log folders must be writable task volumes."
  }

  assert {
    condition     = [for v in local.writable_volumes : v.path] == ["/tmp", "/var/lib/amazon", "/var/log/amazon"]
    error_message = "The writable volumes are /tmp and the SSM agent's state and log folders."
  }
}

run "without_ecs_exec_only_tmp_is_writable" {
  command = plan

  variables {
    enable_execute_command = false
  }

  assert {
    condition = (
      [for m in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].mountPoints : m.containerPath] == ["/tmp"] &&
      [for v in aws_ecs_task_definition.this.volume : v.name] == ["tmp"] &&
      length([for s in jsondecode(aws_iam_role_policy.task.policy).Statement : s if s.Sid == "EcsExecChannels"]) == 0
    )
    error_message = "Without ECS Exec there is neither an agent volume nor the SSM Messages permission."
  }
}

run "rejects_a_memory_size_fargate_does_not_offer" {
  command = plan

  variables {
    cpu    = 256
    memory = 4096
  }

  expect_failures = [var.memory]
}


run "rejects_statements_that_are_not_a_json_array" {
  command = plan

  variables {
    task_policy_statements = "{\"Sid\":\"x\"}"
  }

  expect_failures = [var.task_policy_statements]
}

run "metrics_reach_cloudwatch_through_the_log_output_without_a_sidecar" {
  command = plan

  variables {
    metrics_namespace = "rates-test"
    environment       = { B = "2", METRICS_EMF_SERVICE = "overridden", A = "1" }
  }

  assert {
    condition = jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment == [
      { name = "A", value = "1" },
      { name = "AWS_REGION", value = "eu-central-1" },
      { name = "B", value = "2" },
      { name = "DB_SSLMODE", value = "verify-full" },
      { name = "DB_SSLROOTCERT", value = "/usr/share/rates/rds-ca.pem" },
      { name = "METRICS_EMF_NAMESPACE", value = "rates-test" },
      { name = "METRICS_EMF_SERVICE", value = "rates-test-api" },
    ]
    error_message = "The binary gets the namespace and the ECS service's name as the Service dimension (the module's values win)."
  }

  assert {
    condition = (
      length(jsondecode(aws_ecs_task_definition.this.container_definitions)) == 1 &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].essential == true &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].readonlyRootFilesystem == true &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].logConfiguration.logDriver == "awslogs"
    )
    error_message = "Metrics add no container: still one essential container, read-only root filesystem, its output shipped by awslogs."
  }

  assert {
    condition = alltrue([
      for s in jsondecode(aws_iam_role_policy.task.policy).Statement :
      alltrue([for a in flatten([s.Action]) : !startswith(lower(a), "cloudwatch:") && !startswith(lower(a), "logs:")])
    ])
    error_message = "The task role gets no CloudWatch or Logs permission: the metrics travel in the log output."
  }

  assert {
    condition = [
      for s in jsondecode(aws_iam_role_policy.execution.policy).Statement : s.Resource
      if anytrue([for a in flatten([s.Action]) : startswith(a, "logs:")])
    ] == ["arn:aws:logs:eu-central-1:123456789012:log-group:/ecs/rates-test:log-stream:*"]
    error_message = "Only the execution role writes logs (and with them the metrics), to the task's own log group."
  }
}

run "no_namespace_publishes_no_metrics" {
  command = plan

  assert {
    condition = alltrue([
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : !startswith(e.name, "METRICS_EMF_")
    ])
    error_message = "Without metrics_namespace the binary publishes nothing to CloudWatch."
  }
}

run "aws_namespaces_are_refused" {
  command = plan

  variables {
    metrics_namespace = "AWS/ECS"
  }

  expect_failures = [var.metrics_namespace]
}

run "verify_full_whatever_the_caller_sets" {
  command = plan

  variables {
    environment = { DB_SSLMODE = "require", DB_SSLROOTCERT = "" }
  }

  assert {
    condition = {
      for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[0].environment : e.name => e.value
    } == { AWS_REGION = "eu-central-1", DB_SSLMODE = "verify-full", DB_SSLROOTCERT = "/usr/share/rates/rds-ca.pem" }
    error_message = "Every task of the image connects with verify-full against the RDS bundle."
  }
}

run "migration_task_reads_the_role_passwords_too" {
  command = plan

  variables {
    additional_parameter_arns = [
      "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/api-password",
      "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/worker-password",
    ]
  }

  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.task.policy).Statement : s.Sid => s.Resource if contains(s.Action, "ssm:GetParameter")
      } == {
      ReadDatabasePassword = "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/password"
      ReadAdditionalParameters = [
        "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/api-password",
        "arn:aws:ssm:eu-central-1:123456789012:parameter/rates/test/db/worker-password",
      ]
    }
    error_message = "The migration task reads its own password and the ones it sets on the roles, nothing else."
  }
}

run "rejects_an_additional_parameter_that_is_not_an_ssm_arn" {
  command = plan

  variables {
    additional_parameter_arns = ["*"]
  }

  expect_failures = [var.additional_parameter_arns]
}

run "a_role_without_a_boundary_is_refused" {
  command = plan

  variables {
    permissions_boundary_arn = "rates-test-boundary"
  }

  expect_failures = [var.permissions_boundary_arn]
}
