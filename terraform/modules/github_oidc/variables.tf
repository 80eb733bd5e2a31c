variable "name" {
  description = "Prefix of the deploy role's name: `<name>-github-deploy` (for example `rates-dev`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,50}$", var.name))
    error_message = "The name must be 1-50 characters valid in an IAM role name (letters, digits and + = , . @ _ -)."
  }
}

variable "github_repository" {
  description = "GitHub repository allowed to assume the role, as `owner/name`."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "The github_repository must be `owner/name`, for example my-org/rates."
  }
}

variable "deploy_branch" {
  description = "Branch whose workflow jobs without an environment may assume the role (`sub` = `repo:<owner>/<name>:ref:refs/heads/<branch>`). Null: no branch, environments only."
  type        = string
  default     = "master"

  validation {
    condition     = var.deploy_branch == null || can(regex("^[A-Za-z0-9._/-]+$", coalesce(var.deploy_branch, "-"))) && !strcontains(coalesce(var.deploy_branch, "-"), "*")
    error_message = "The deploy_branch must be a plain branch name without wildcards."
  }
}

variable "github_environments" {
  description = "GitHub environments whose jobs may assume the role (`sub` = `repo:<owner>/<name>:environment:<env>`); their protection rules (required reviewers) gate the deployment."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.github_environments : can(regex("^[A-Za-z0-9._-]{1,255}$", e))])
    error_message = "Every environment must be a plain GitHub environment name (letters, digits, . _ -) without wildcards."
  }

  validation {
    condition     = length(var.github_environments) > 0 || var.deploy_branch != null
    error_message = "Give a deploy_branch, at least one environment, or both: otherwise nobody can assume the role."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the account's existing GitHub OIDC provider (`token.actions.githubusercontent.com`). Null: this module creates it. An account holds one provider per URL, so every other configuration in the same account passes the ARN."
  type        = string
  default     = null

  validation {
    condition     = var.oidc_provider_arn == null || can(regex("^arn:aws[a-zA-Z-]*:iam::[0-9]{12}:oidc-provider/token\\.actions\\.githubusercontent\\.com$", coalesce(var.oidc_provider_arn, "-")))
    error_message = "The oidc_provider_arn must be the ARN of a token.actions.githubusercontent.com OIDC provider."
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

variable "max_session_duration" {
  description = "Longest session (seconds) a workflow job may request for the role: 1 to 12 hours."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "The max_session_duration must be between 3600 and 43200 seconds."
  }
}

variable "tags" {
  description = "Tags added to every resource (on top of the provider's default tags)."
  type        = map(string)
  default     = {}
}
