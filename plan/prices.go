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

	FargateVCPUHour float64 `json:"fargate_vcpu_hour"` // Linux/x86
	FargateGBHour   float64 `json:"fargate_gb_hour"`

	KinesisShardHour       float64 `json:"kinesis_shard_hour"`
	KinesisPutUnitsMillion float64 `json:"kinesis_put_payload_units_million"`
	KinesisODStreamHour    float64 `json:"kinesis_on_demand_stream_hour"`
	KinesisODInGB          float64 `json:"kinesis_on_demand_in_gb"`
	KinesisODOutGB         float64 `json:"kinesis_on_demand_out_gb"`

	FirehoseGB        float64 `json:"firehose_ingest_gb"` // first 500 TB a month
	FirehoseParquetGB float64 `json:"firehose_format_conversion_gb"`

	LambdaRequestsMillion float64 `json:"lambda_requests_million"`
	LambdaGBSecond        float64 `json:"lambda_gb_second"` // x86

	ALBHour    float64 `json:"alb_hour"`
	ALBLCUHour float64 `json:"alb_lcu_hour"`

	SQSRequestsMillion float64 `json:"sqs_requests_million"` // standard queue
}

// DefaultPrices returns the list prices for us-east-1 and eu-west-1; other
// regions get us-east-1's, marked unverified.
func DefaultPrices(region string) Prices {
	us := Prices{
		Unverified: []string{"kinesis_on_demand_stream_hour", "kinesis_on_demand_in_gb", "kinesis_on_demand_out_gb",
			"firehose_format_conversion_gb", "lambda_requests_million", "lambda_gb_second", "sqs_requests_million"},
		FargateVCPUHour:        0.04048,
		FargateGBHour:          0.004445,
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
		eu.KinesisShardHour = 0.017
		eu.KinesisPutUnitsMillion = 0.0154
		eu.FirehoseGB = 0.031
		eu.FirehoseParquetGB = 0.02
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
