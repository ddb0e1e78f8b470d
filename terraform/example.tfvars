# An example deployment (also what `make tf-validate` plans with). Copy to
# <env>.tfvars and replace the IDs. docs/deploy.md explains each value.

name   = "spate"
region = "eu-north-1"

vpc_id             = "vpc-0123456789abcdef0"
public_subnet_ids  = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2", "subnet-0aaaaaaaaaaaaaaa3"]
private_subnet_ids = ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2", "subnet-0bbbbbbbbbbbbbbb3"]
# The private subnets' route tables, for the S3 gateway endpoint.
private_route_table_ids = ["rtb-0ccccccccccccccc1", "rtb-0ccccccccccccccc2", "rtb-0ccccccccccccccc3"]
certificate_arn         = "arn:aws:acm:eu-north-1:123456789012:certificate/00000000-0000-4000-8000-000000000000"
domain_name             = "events.example.com"
route53_zone_id         = "Z0123456789ABCDEFGHIJ"

image_tag                  = "v0.1.0"
ingest_api_keys_secret_arn = "arn:aws:secretsmanager:eu-north-1:123456789012:secret:spate/api-keys-AbCdEf"
ingest_environment = {
  SPATE_BATCH_LINGER = "10ms"
}

# From `spate plan` (docs/capacity.md): prime time 10,000 requests/s at
# 2,000 requests/s per task and 60 % target utilisation.
ingest_min_tasks    = 9
ingest_max_tasks    = 80
kinesis_shard_count = 40

reward_endpoints = [
  { model = "thumbnails", url = "https://bandit.example.com/v1/rewards" },
]

alarm_actions = ["arn:aws:sns:eu-north-1:123456789012:spate-alarms"]

# From `spate prescale --tfvars`: raise the floor ahead of a broadcast,
# lower it after.
ecs_scheduled_actions = [
  { name = "spate-prescale-20260614T1630-up", schedule = "at(2026-06-14T16:30:00)", min_capacity = 40, max_capacity = 120 },
  { name = "spate-prescale-20260614T2030-down", schedule = "at(2026-06-14T20:30:00)", min_capacity = 9, max_capacity = 80 },
]
