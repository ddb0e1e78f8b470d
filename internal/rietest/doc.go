// Package rietest runs the three Lambda bootstraps, built as `make
// lambdas` builds them but for the host's architecture, under the AWS
// Lambda Runtime Interface Emulator (pinned in go.mod's tool directive),
// and invokes them over the RIE's HTTP API with aws-lambda-go's sample
// events and spate's own, against kinesalite, local-aws-sqs, the Firehose
// fake, an in-process S3 fake and a reward-API stand-in.
//
// The RIE differs from Lambda in ways the suite allows for: payloads over
// 6 MiB are truncated (Lambda answers 413), a function error is HTTP 200
// with errorType, and an init failure is a 502 with an empty body.
package rietest
