#!/usr/bin/env bash
# make tf-validate: tflint, then terraform validate and plan against the
# real hashicorp/aws provider schema, offline: no AWS account, no registry.
#
# The provider is built from the Go module proxy once (30+ minutes, about
# 7 GB) into $SPATE_TF_PROVIDER_DIR (default ~/.cache/spate/tfprovider),
# then found through a CLI config with dev_overrides, which also means no
# `terraform init`. The plan uses fake credentials and the provider's
# skip_* settings; -refresh=false, so nothing is read from AWS.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tf="$root/terraform"
provider_version=v1.60.1-0.20260602190131-5f2286d6d836
provider_dir=${SPATE_TF_PROVIDER_DIR:-$HOME/.cache/spate/tfprovider}

if [ ! -x "$provider_dir/terraform-provider-aws" ]; then
  echo "tf-validate: building hashicorp/aws $provider_version into $provider_dir (30+ minutes the first time)" >&2
  mkdir -p "$provider_dir"
  (cd /tmp && GOBIN="$provider_dir" GOFLAGS=-buildvcs=false nice -n 19 go install "github.com/hashicorp/terraform-provider-aws@$provider_version")
fi

work=$(mktemp -d)
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$work"' EXIT

cat > "$work/cli.tfrc" <<TFRC
provider_installation {
  dev_overrides {
    "hashicorp/aws" = "$provider_dir"
  }
  direct {}
}
TFRC
export TF_CLI_CONFIG_FILE="$work/cli.tfrc"
export TF_IN_AUTOMATION=1
export CHECKPOINT_DISABLE=1

# The module as it is, except backend.tf: the S3 backend needs `terraform
# init` with real credentials. A provider override adds the offline
# settings to the provider block.
mod="$work/module"
mkdir "$mod"
cp "$tf"/*.tf "$tf"/*.json "$tf"/example.tfvars "$mod"/
rm "$mod/backend.tf"
cat > "$mod/validate_override.tf" <<'TF'
provider "aws" {
  access_key                  = "AKIAVALIDATEONLY0000"
  secret_key                  = "validate-only"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}
TF

# The Lambda packages terraform hashes: the real ones where their mains
# exist, an empty bootstrap otherwise (reported).
dist="$work/dist"
mkdir "$dist"
make -s -C "$root" lambdas >&2
for fn in router aggregator reward; do
  if [ -f "$root/dist/$fn.zip" ]; then
    cp "$root/dist/$fn.zip" "$dist/"
  else
    echo "tf-validate: no dist/$fn.zip (cmd/spate-$fn missing): planning with a placeholder" >&2
    : > "$work/bootstrap"
    (cd "$root" && go run ./tools/lambdazip -o "$dist/$fn.zip" "$work/bootstrap")
  fi
done

export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN || true

# tflint's bundled terraform rules (documented and typed variables,
# naming, unused declarations, module structure), on the module as is.
tflint_dir=${SPATE_TFLINT_DIR:-$HOME/.cache/spate/tflint}
if [ ! -x "$tflint_dir/tflint" ]; then
  echo "tf-validate: building tflint v0.64.0 into $tflint_dir (a few minutes, once)" >&2
  mkdir -p "$tflint_dir"
  (cd /tmp && GOBIN="$tflint_dir" GOFLAGS=-buildvcs=false nice -n 19 go install github.com/terraform-linters/tflint@v0.64.0)
fi
echo "== tflint" >&2
(cd "$tf" && "$tflint_dir/tflint" --format=compact)

cd "$mod"
echo "== terraform validate" >&2
terraform validate -no-color

plan() {
  echo "== terraform plan -refresh=false $*" >&2
  terraform plan -refresh=false -input=false -lock=false -no-color \
    -var-file=example.tfvars -var "lambda_dist_dir=$dist" "$@" > "$work/plan.txt" 2>&1 || {
    cat "$work/plan.txt"
    return 1
  }
  # Warnings (deprecations, ignored arguments) are findings too; the
  # dev_overrides notice is expected.
  grep -A3 -E '^(Warning|Error):' "$work/plan.txt" | grep -v -A3 'development overrides' | grep -E '^(Warning|Error):|^  (with|on) ' || true
  grep -E '^(Plan:|No changes)' "$work/plan.txt"
}

# The example deployment (provisioned shards, scheduled actions, API keys,
# DNS), then the other branches: on-demand stream, no optional extras, and
# the scheduled prescale task instead of scheduled actions from terraform.
plan
plan -var kinesis_stream_mode=ON_DEMAND -var 'ecs_scheduled_actions=[]' -var ingest_api_keys_secret_arn= -var allow_anonymous_ingest=true \
  -var vpc_endpoints=false -var waf_enabled=false -var alb_access_logs=false \
  -var route53_zone_id= -var domain_name= -var 'alarm_actions=[]' -var alb_capacity_units=20 -var lake_expiration_days=730 \
  -var prescale_schedule_s3_uri=s3://example-ops/spate/schedule.csv -var prescale_manage_kinesis=true

# trivy's misconfiguration scan, offline: its checks are embedded in the
# binary (--skip-check-update), built once from the Go module proxy (v0.74
# needs GOEXPERIMENT=jsonv2). It fails on any HIGH or CRITICAL finding not
# listed, with its reason, in terraform/.trivyignore (docs/deploy.md).
trivy_dir=${SPATE_TRIVY_DIR:-$HOME/.cache/spate/trivy}
if [ ! -x "$trivy_dir/trivy" ]; then
  echo "tf-validate: building trivy v0.74.0 into $trivy_dir (several minutes, once)" >&2
  mkdir -p "$trivy_dir"
  (cd /tmp && GOEXPERIMENT=jsonv2 GOBIN="$trivy_dir" GOFLAGS=-buildvcs=false nice -n 19 go install github.com/aquasecurity/trivy/cmd/trivy@v0.74.0)
fi
echo "== trivy config (HIGH, CRITICAL)" >&2
"$trivy_dir/trivy" config --skip-check-update --quiet --exit-code 1 --severity HIGH,CRITICAL \
  --ignorefile "$tf/.trivyignore" --tf-vars "$tf/example.tfvars" --cache-dir "$work/trivy-cache" "$tf"
echo "tf-validate: ok" >&2
