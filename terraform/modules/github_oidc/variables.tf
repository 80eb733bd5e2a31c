variable "deploy_role_name" {
  description = "Name of the environment's deploy role, created with its trust by terraform/bootstrap (`rates-<env>-github-deploy`, under the IAM path /rates-ci/)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,64}$", var.deploy_role_name))
    error_message = "The deploy_role_name must be an IAM role name (1-64 letters, digits and + = , . @ _ -), without a path."
  }
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository the role may push to (and pull from)."
  type        = string

  validation {
    condition     = !strcontains(var.ecr_repository_arn, "*")
    error_message = "The ecr_repository_arn must name one repository, without wildcards."
  }
}

variable "ecs_service_arns" {
  description = "ARNs of the ECS services the role may update and describe (the API and the worker)."
  type        = list(string)

  validation {
    condition     = length(var.ecs_service_arns) >= 1 && alltrue([for a in var.ecs_service_arns : !strcontains(a, "*")])
    error_message = "Give at least one service ARN, without wildcards."
  }
}

variable "pass_role_arns" {
  description = "ARNs of the IAM roles the role may pass to ECS tasks when it registers task definitions: the task and execution roles of those services."
  type        = list(string)

  validation {
    condition     = length(var.pass_role_arns) >= 1 && alltrue([for a in var.pass_role_arns : !strcontains(a, "*")])
    error_message = "Give at least one role ARN, without wildcards."
  }
}

variable "run_task_definition_arns" {
  description = "Task definition ARN patterns (`...:task-definition/<family>:*`) the deploy may run one-off tasks of: the migration task and the worker's start check."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.run_task_definition_arns : can(regex("^arn:[a-z-]+:ecs:[a-z0-9-]+:[0-9]{12}:task-definition/[A-Za-z0-9_-]+:(\\*|[0-9]+)$", a))])
    error_message = "Every entry must be a task definition ARN ending in :* or a revision."
  }
}

variable "cluster_arn" {
  description = "ARN of the environment's ECS cluster: one-off tasks run there only. Required with run_task_definition_arns."
  type        = string
  default     = null

  validation {
    condition     = var.cluster_arn == null || can(regex("^arn:[a-z-]+:ecs:[a-z0-9-]+:[0-9]{12}:cluster/", var.cluster_arn))
    error_message = "The cluster_arn must be an ECS cluster ARN."
  }
}

variable "read_log_group_arns" {
  description = "Log groups of the one-off tasks, whose output the deploy shows."
  type        = list(string)
  default     = []
}

