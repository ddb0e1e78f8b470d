package plan

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
)

// Prices are on-demand list prices in USD, one region's. The defaults and
// their sources are in docs/capacity.md; override any of them with the
// --price-* flags. Tiered prices use their first tier.
type Prices struct {
	// Unverified names the prices (by their JSON names) that could not
	// be confirmed from a public source when the defaults were set; the
	// plan warns about them until they are overridden.
	Unverified []string `json:"unverified,omitempty"`

	FargateVCPUHour    float64 `json:"fargate_vcpu_hour"` // Linux/x86
	FargateGBHour      float64 `json:"fargate_gb_hour"`
	FargateARMVCPUHour float64 `json:"fargate_arm_vcpu_hour"` // Linux/ARM (Graviton)
	FargateARMGBHour   float64 `json:"fargate_arm_gb_hour"`

	KinesisShardHour       float64 `json:"kinesis_shard_hour"`
	KinesisPutUnitsMillion float64 `json:"kinesis_put_payload_units_million"`
	KinesisODStreamHour    float64 `json:"kinesis_on_demand_stream_hour"`
	KinesisODInGB          float64 `json:"kinesis_on_demand_in_gb"`
	KinesisODOutGB         float64 `json:"kinesis_on_demand_out_gb"`

	FirehoseGB        float64 `json:"firehose_ingest_gb"` // first 500 TB a month
	FirehoseParquetGB float64 `json:"firehose_format_conversion_gb"`

	LambdaRequestsMillion float64 `json:"lambda_requests_million"`
	LambdaGBSecond        float64 `json:"lambda_gb_second"` // x86
	LambdaARMGBSecond     float64 `json:"lambda_arm_gb_second"`

	ALBHour    float64 `json:"alb_hour"`
	ALBLCUHour float64 `json:"alb_lcu_hour"`

	SQSRequestsMillion float64 `json:"sqs_requests_million"` // standard queue

	// The rest of the bill (bill.go).
	EndpointAZHour   float64 `json:"vpc_endpoint_az_hour"` // interface endpoint, per AZ
	EndpointGB       float64 `json:"vpc_endpoint_gb"`
	NATHour          float64 `json:"nat_gateway_hour"`
	NATGB            float64 `json:"nat_gateway_gb"`
	InternetOutGB    float64 `json:"data_transfer_out_gb"` // to the internet, first 10 TB
	LogsIngestGB     float64 `json:"cloudwatch_logs_ingest_gb"`
	LogsStorageGB    float64 `json:"cloudwatch_logs_storage_gb_month"`
	AlarmMetricMonth float64 `json:"cloudwatch_alarm_metric_month"` // standard resolution
	MetricMonth      float64 `json:"cloudwatch_metric_month"`       // custom metric, first 10,000
	DashboardMonth   float64 `json:"cloudwatch_dashboard_month"`
	S3StandardGB     float64 `json:"s3_standard_gb_month"`
	S3ITInfrequentGB float64 `json:"s3_it_infrequent_gb_month"`
	S3ITArchiveGB    float64 `json:"s3_it_archive_instant_gb_month"`
	S3ITMonitor1000  float64 `json:"s3_it_monitoring_1000_objects"`
	S3Put1000        float64 `json:"s3_put_1000"`
	S3Transition1000 float64 `json:"s3_lifecycle_transition_1000"`
	KMSKeyMonth      float64 `json:"kms_key_month"`
	KMSRequests10k   float64 `json:"kms_requests_10k"`
	WAFACLMonth      float64 `json:"waf_web_acl_month"`
	WAFRuleMonth     float64 `json:"waf_rule_month"`
	WAFRequestsM     float64 `json:"waf_requests_million"`
	SecretMonth      float64 `json:"secrets_manager_secret_month"`
	ECRStorageGB     float64 `json:"ecr_storage_gb_month"`
}

// DefaultPrices returns the list prices for us-east-1 and eu-west-1; other
// regions get us-east-1's, marked unverified.
func DefaultPrices(region string) Prices {
	us := Prices{
		// Sources for each in docs/capacity.md; these could not be
		// confirmed from a stored public source.
		Unverified: []string{"firehose_format_conversion_gb", "cloudwatch_logs_storage_gb_month",
			"s3_it_infrequent_gb_month", "s3_it_archive_instant_gb_month", "s3_lifecycle_transition_1000", "ecr_storage_gb_month"},
		FargateVCPUHour:        0.04048,
		FargateGBHour:          0.004445,
		FargateARMVCPUHour:     0.03238,
		FargateARMGBHour:       0.00356,
		LambdaARMGBSecond:      0.0000133334,
		KinesisShardHour:       0.015,
		KinesisPutUnitsMillion: 0.014,
		KinesisODStreamHour:    0.04,
		KinesisODInGB:          0.08,
		KinesisODOutGB:         0.04,
		FirehoseGB:             0.029,
		FirehoseParquetGB:      0.018,
		LambdaRequestsMillion:  0.20,
		LambdaGBSecond:         0.0000166667,
		ALBHour:                0.0225,
		ALBLCUHour:             0.008,
		SQSRequestsMillion:     0.40,
		EndpointAZHour:         0.01,
		EndpointGB:             0.01,
		NATHour:                0.045,
		NATGB:                  0.045,
		InternetOutGB:          0.09,
		LogsIngestGB:           0.50,
		LogsStorageGB:          0.03,
		AlarmMetricMonth:       0.10,
		MetricMonth:            0.30,
		DashboardMonth:         3.00,
		S3StandardGB:           0.023,
		S3ITInfrequentGB:       0.0125,
		S3ITArchiveGB:          0.004,
		S3ITMonitor1000:        0.0025,
		S3Put1000:              0.005,
		S3Transition1000:       0.01,
		KMSKeyMonth:            1.00,
		KMSRequests10k:         0.03,
		WAFACLMonth:            5.00,
		WAFRuleMonth:           1.00,
		WAFRequestsM:           0.60,
		SecretMonth:            0.40,
		ECRStorageGB:           0.10,
	}
	switch region {
	case "us-east-1":
		return us
	case "eu-west-1":
		eu := us
		// None of the eu-west-1 figures could be confirmed from a stored
		// source (docs/capacity.md); check them before budgeting.
		eu.Unverified = eu.names()
		eu.FargateVCPUHour = 0.04456
		eu.FargateGBHour = 0.004865
		eu.FargateARMVCPUHour = 0.03565
		eu.FargateARMGBHour = 0.00391
		eu.KinesisShardHour = 0.017
		eu.KinesisPutUnitsMillion = 0.0154
		eu.FirehoseGB = 0.031
		eu.FirehoseParquetGB = 0.019
		eu.Confirm("firehose_format_conversion_gb")
		eu.Confirm("firehose_ingest_gb")
		eu.ALBHour = 0.0252
		return eu
	default:
		us.Unverified = us.names()
		return us
	}
}

// names lists every price by its JSON name.
func (p Prices) names() []string {
	var out []string
	t := reflect.TypeOf(p)
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Type.Kind() == reflect.Float64 {
			out = append(out, strings.Split(t.Field(i).Tag.Get("json"), ",")[0])
		}
	}
	return out
}

// Set sets the price named name (its JSON name) and confirms it.
func (p *Prices) Set(name string, v float64) error {
	rv := reflect.ValueOf(p).Elem()
	t := rv.Type()
	for i := 0; i < t.NumField(); i++ {
		if strings.Split(t.Field(i).Tag.Get("json"), ",")[0] == name && t.Field(i).Type.Kind() == reflect.Float64 {
			rv.Field(i).SetFloat(v)
			p.Confirm(name)
			return nil
		}
	}
	return fmt.Errorf("plan: no price %q", name)
}

// Confirm drops name from Unverified: the caller set that price itself.
func (p *Prices) Confirm(name string) {
	p.Unverified = slices.DeleteFunc(slices.Clone(p.Unverified), func(n string) bool { return n == name })
}

func (p Prices) validate() error {
	v := reflect.ValueOf(p)
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if f.Kind() != reflect.Float64 {
			continue
		}
		if x := f.Float(); x < 0 || math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("plan settings: price %s must not be negative, got %v", v.Type().Field(i).Name, x)
		}
	}
	return nil
}
