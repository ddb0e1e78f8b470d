resource "aws_ecs_cluster" "spate" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_ecs_cluster_capacity_providers" "spate" {
  cluster_name = aws_ecs_cluster.spate.name
  # On-demand Fargate only: a Spot reclaim is a SIGTERM with two minutes'
  # notice, which ingest survives, but not a peak's worth of them at once.
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}
