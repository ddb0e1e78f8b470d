# spate — every command a developer or CI needs. `make test` is the test
# command the README and .ci/run use.
SHELL := bash
GO ?= go
# A count, not a duration: Go 1.26's fuzz coordinator can report its own
# -fuzztime deadline as "context deadline exceeded" with no failing input
# (golang/go#75804, fixed in Go 1.27); a count budget has no deadline to race.
FUZZTIME ?= 100000x
LAMBDA_ARCH ?= arm64
# Reproducible binaries: no VCS stamp or local paths, fixed build id.
GOFLAGS_BUILD := -trimpath -buildvcs=false -ldflags='-s -w -buildid='

.PHONY: all build test test-clock-shift unit emulators fuzz bench lambdas rie tf-fmt tf-validate loadtest-check clean

all: build

build:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_BUILD) -o bin/spate ./cmd/spate

## emulators: install kinesalite and local-aws-sqs pinned in emulators/package-lock.json
emulators: emulators/node_modules/.installed
emulators/node_modules/.installed: emulators/package.json emulators/package-lock.json
	cd emulators && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## test: everything CI runs, emulators included. Every step runs even after
## one fails, so a Go failure does not hide a terraform or k6 one; the target
## fails at the end, naming each failed step.
CLOCK_SHIFT ?= 8760h
test: emulators
	@failed=""; \
	run() { name=$$1; shift; echo "== $$name"; if ! "$$@"; then failed="$$failed\n  $$name"; fi; }; \
	run "gofmt" sh -c 'out=$$(gofmt -l $$(git ls-files "*.go")); [ -z "$$out" ] || { echo "not gofmt-ed: $$out" >&2; exit 1; }'; \
	run "go vet" $(GO) vet ./...; \
	run "go test -race" $(GO) test -race -count=1 -timeout 20m ./...; \
	run "go test, clock $(CLOCK_SHIFT) ahead" env SPATE_CLOCK_SHIFT=$(CLOCK_SHIFT) $(GO) test -race -count=1 -timeout 10m $$($(GO) list ./... | grep -v -e /internal/faulttest -e /internal/deploytest); \
	if command -v terraform >/dev/null; then run "terraform fmt -check" terraform fmt -check -recursive terraform; \
	elif [ "$$CI" = true ]; then echo "CI=true and terraform is not installed" >&2; failed="$$failed\n  terraform fmt -check (terraform missing)"; \
	else echo "terraform not installed: skipped terraform fmt -check (CI runs it)" >&2; fi; \
	if [ -f loadtest/check.js ]; then run "k6 script check" node loadtest/check.js; \
	else echo "loadtest/check.js is missing" >&2; failed="$$failed\n  k6 script check (loadtest/check.js missing)"; fi; \
	if [ -n "$$failed" ]; then printf "make test failed:$$failed\n" >&2; exit 1; fi; \
	echo "make test: all steps passed"

## test-clock-shift: the suite with every component's wall clock moved
## (SPATE_CLOCK_SHIFT, internal/clock), e.g. CLOCK_SHIFT=-8760h
test-clock-shift: emulators
	SPATE_CLOCK_SHIFT=$(CLOCK_SHIFT) $(GO) test -race -count=1 -timeout 20m ./...

unit:
	$(GO) test -race -count=1 -short ./...

## fuzz: every fuzz target for FUZZTIME each (executions, e.g. 100000x, or a duration)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 0 $$pkg > .fuzz.log 2>&1 && { tail -1 .fuzz.log; continue; }; \
	    cat .fuzz.log; \
	    if grep -q 'context deadline exceeded' .fuzz.log && ! grep -q 'Failing input written' .fuzz.log; then \
	      echo "fuzz $$pkg $$f: the fuzzing engine's own deadline, not a finding (no failing input); once more"; \
	      $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 0 $$pkg || exit 1; \
	    else exit 1; fi; \
	  done; \
	done

## bench: ingest, router and lake benchmarks, HTTP load of spate local against
## the ceiling, and the end-to-end lake count, in one go (loopback only, about
## 4 minutes on 2 cores); rewrites the generated sections of docs/benchmarks.md
bench:
	$(GO) run ./internal/benchreport -go $(GO) -out docs/benchmarks.md

## lambdas: bootstrap zips for provided.al2023 on $(LAMBDA_ARCH), byte-reproducible
## (internal/lambdazip: fixed times and modes); terraform reads dist/<fn>.zip.
## The RIE suite (internal/rietest) runs this target with the host's
## LAMBDA_ARCH and its own DIST, so it tests the bootstraps as shipped.
LAMBDAS := router aggregator reward
DIST ?= dist
lambdas:
	@set -e; mkdir -p $(DIST); for fn in $(LAMBDAS); do \
	  if [ ! -f cmd/spate-$$fn/main.go ]; then echo "lambdas: cmd/spate-$$fn/main.go is missing" >&2; exit 1; fi; \
	  rm -rf $(DIST)/$$fn && mkdir -p $(DIST)/$$fn; \
	  CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) $(GO) build $(GOFLAGS_BUILD) -tags lambda.norpc -o $(DIST)/$$fn/bootstrap ./cmd/spate-$$fn; \
	  $(GO) run ./tools/lambdazip -o $(DIST)/$$fn.zip $(DIST)/$$fn/bootstrap; \
	  sha256sum $(DIST)/$$fn.zip; \
	done

## rie: the AWS Lambda Runtime Interface Emulator, pinned by the tool
## directive in go.mod (the RIE suite builds it the same way)
rie:
	$(GO) build -o bin/aws-lambda-rie github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie

tf-fmt:
	terraform fmt -recursive terraform

tf-validate:
	./terraform/validate.sh

clean:
	rm -rf bin dist data
