variable "name" {
  description = "Prefix of the security group, scaling policies and scaling alarms (for example `rates-dev` for the API, `rates-dev-worker` for the worker)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,40}$", var.name))
    error_message = "The name must be 2-41 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "service_name" {
  description = "Name of the ECS service (for example `rates-dev-api`)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_-]{1,255}$", var.service_name))
    error_message = "The service_name must be 1-255 letters, digits, hyphens or underscores."
  }
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster the service runs in."
  type        = string
}

variable "cluster_name" {
  description = "Name of that cluster (part of the autoscaling resource ID)."
  type        = string
}

variable "task_definition_arn" {
  description = "Task definition revision the service is created with (modules/ecs_task). Deployments register newer ones; the service ignores this argument after creation."
  type        = string
}

variable "enable_execute_command" {
  description = "Whether ECS Exec (`aws ecs execute-command`) is enabled on the service (the task definition must allow it: modules/ecs_task `enable_execute_command`)."
  type        = bool
  default     = false
}

variable "vpc_id" {
  description = "ID of the VPC of the tasks' security group."
  type        = string
}

variable "subnet_ids" {
  description = "IDs of the private subnets the tasks run in (no public IP is assigned)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 1
    error_message = "At least one subnet is needed."
  }
}

variable "database_security_group_id" {
  description = "ID of the database's security group: the tasks may open connections to it on db_port."
  type        = string
}

variable "db_port" {
  description = "Port of the database (the egress rule towards it)."
  type        = number
  default     = 5432
}

variable "https_egress" {
  description = "Where the tasks may open HTTPS connections, the AWS APIs they call: `cidr_block` (0.0.0.0/0 through NAT, whose AWS endpoints have no fixed addresses; or the VPC's block, where its interface endpoints are) and `prefix_list_ids` (S3's gateway endpoint when the VPC has one)."
  type = object({
    cidr_block      = string
    prefix_list_ids = list(string)
  })

  validation {
    condition     = can(cidrhost(var.https_egress.cidr_block, 0))
    error_message = "The https_egress.cidr_block must be an IPv4 CIDR block."
  }
}

variable "desired_count" {
  description = "Number of tasks the service starts with (autoscaling moves it between min_capacity and max_capacity afterwards)."
  type        = number

  validation {
    condition     = var.desired_count >= var.min_capacity && var.desired_count <= var.max_capacity
    error_message = "The desired_count must lie between min_capacity and max_capacity."
  }
}

variable "min_capacity" {
  description = "Fewest tasks autoscaling keeps: at least 1 behind a load balancer; 0 on a queue lets an idle service run none (the first message then waits about a minute for a task)."
  type        = number

  validation {
    condition     = var.min_capacity >= (var.load_balancer == null ? 0 : 1) && floor(var.min_capacity) == var.min_capacity
    error_message = "The min_capacity must be a whole number of at least 0, and at least 1 behind a load balancer."
  }
}

variable "max_capacity" {
  description = "Most tasks autoscaling may scale out to (mind the database's connections: each task holds a pool)."
  type        = number

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity >= var.min_capacity && floor(var.max_capacity) == var.max_capacity
    error_message = "The max_capacity must be a whole number of at least 1 and not below min_capacity."
  }
}

variable "load_balancer" {
  description = "The load balancer the service registers its tasks with (target group of type ip), null for none: the only source its security group admits, on container_port; CPU and requests-per-target scaling (resource_label: `<alb arn suffix>/<target group arn suffix>`)."
  type = object({
    target_group_arn  = string
    security_group_id = string
    container_name    = string
    container_port    = number
    resource_label    = string
  })
  default = null

  validation {
    condition     = var.load_balancer == null || try(var.load_balancer.container_port >= 1 && var.load_balancer.container_port <= 65535, false)
    error_message = "The load_balancer.container_port must be between 1 and 65535."
  }
}

variable "queue_name" {
  description = "Name of the SQS queue whose depth scales the service in steps (the worker), null for none. Exactly one of load_balancer and queue_name is set."
  type        = string
  default     = null

  validation {
    condition     = (var.queue_name == null) != (var.load_balancer == null)
    error_message = "Set exactly one of load_balancer (target tracking on CPU and requests) and queue_name (steps on the queue's depth)."
  }
}
