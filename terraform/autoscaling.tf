# Target tracking follows the load; scheduled actions (from `spate
# prescale`) raise the floor before known peaks, because a jump from prime
# time to 2.5 M requests/min in 30 s outruns reactive scaling.

resource "aws_appautoscaling_target" "ingest" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.spate.name}/${aws_ecs_service.ingest.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.ingest_min_tasks
  max_capacity       = var.ingest_max_tasks
}

resource "aws_appautoscaling_policy" "ingest_requests" {
  name               = "${var.name}-ingest-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.ingest.service_namespace
  resource_id        = aws_appautoscaling_target.ingest.resource_id
  scalable_dimension = aws_appautoscaling_target.ingest.scalable_dimension

  target_tracking_scaling_policy_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.ingest.arn_suffix}/${aws_lb_target_group.ingest.arn_suffix}"
    }
    # ALBRequestCountPerTarget is a per-minute sum: requests/s per task x
    # 60 x the utilisation we aim for.
    target_value       = local.alb_request_target
    scale_out_cooldown = 30
    scale_in_cooldown  = 300
  }
}

resource "aws_appautoscaling_policy" "ingest_cpu" {
  name               = "${var.name}-ingest-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.ingest.service_namespace
  resource_id        = aws_appautoscaling_target.ingest.resource_id
  scalable_dimension = aws_appautoscaling_target.ingest.scalable_dimension

  target_tracking_scaling_policy_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
    target_value       = var.ingest_cpu_target
    scale_out_cooldown = 30
    scale_in_cooldown  = 300
  }
}

resource "aws_appautoscaling_scheduled_action" "ingest" {
  for_each = { for a in var.ecs_scheduled_actions : a.name => a }
  # The plan's own names (spate-prescale-…): the same actions whether
  # prescale applies them with the SDK or through this variable.
  name               = each.key
  service_namespace  = aws_appautoscaling_target.ingest.service_namespace
  resource_id        = aws_appautoscaling_target.ingest.resource_id
  scalable_dimension = aws_appautoscaling_target.ingest.scalable_dimension
  schedule           = each.value.schedule
  timezone           = "UTC"

  scalable_target_action {
    min_capacity = each.value.min_capacity
    max_capacity = each.value.max_capacity
  }
}
