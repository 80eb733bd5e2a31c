# Addresses of the earlier layout, where the API's cluster, service and task were modules/service,
# the worker's service and task lived in modules/ingest, the migration task was module.migrate and
# the deploy permissions modules/github_oidc. An applied workspace moves them to their addresses
# here instead of destroying and creating them; modules/ecs_service moves the API's policies and
# ingress rule under their count.

moved {
  from = module.service.aws_ecs_cluster.this
  to   = aws_ecs_cluster.this
}

moved {
  from = module.service.module.task
  to   = module.task["api"]
}

moved {
  from = module.service
  to   = module.service["api"]
}

moved {
  from = module.ingest.module.task
  to   = module.task["worker"]
}

moved {
  from = module.migrate
  to   = module.task["migrate"]
}

moved {
  from = module.ingest.aws_security_group.worker
  to   = module.service["worker"].aws_security_group.this
}

moved {
  from = module.ingest.aws_vpc_security_group_egress_rule.database
  to   = module.service["worker"].aws_vpc_security_group_egress_rule.database
}

moved {
  from = module.ingest.aws_vpc_security_group_egress_rule.https
  to   = module.service["worker"].aws_vpc_security_group_egress_rule.https
}

moved {
  from = module.ingest.aws_vpc_security_group_egress_rule.https_prefix_list
  to   = module.service["worker"].aws_vpc_security_group_egress_rule.https_prefix_list
}

moved {
  from = module.ingest.aws_ecs_service.worker
  to   = module.service["worker"].aws_ecs_service.this
}

moved {
  from = module.ingest.aws_appautoscaling_target.worker
  to   = module.service["worker"].aws_appautoscaling_target.this
}

moved {
  from = module.ingest.aws_appautoscaling_policy.scale_out
  to   = module.service["worker"].aws_appautoscaling_policy.scale_out[0]
}

moved {
  from = module.ingest.aws_appautoscaling_policy.scale_in
  to   = module.service["worker"].aws_appautoscaling_policy.scale_in[0]
}

moved {
  from = module.ingest.aws_cloudwatch_metric_alarm.backlog
  to   = module.service["worker"].aws_cloudwatch_metric_alarm.backlog[0]
}

moved {
  from = module.ingest.aws_cloudwatch_metric_alarm.idle
  to   = module.service["worker"].aws_cloudwatch_metric_alarm.idle[0]
}

moved {
  from = module.github_oidc.aws_iam_role_policy.deploy
  to   = aws_iam_role_policy.deploy
}
