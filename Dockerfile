# syntax=docker/dockerfile:1
# The ingest service image: one static spate binary on distroless, run as
# the distroless nonroot user. No HEALTHCHECK: the ALB target group checks
# /healthz and ECS replaces tasks the ALB marks unhealthy.
# internal/deploytest checks this file against the repo and builds exactly
# what it builds.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
# Set by BuildKit from --platform (linux/arm64 for the default Graviton
# tasks); no defaults, which would override them.
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Modules first, so source edits reuse the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# Same flags as `make build`: reproducible, no VCS stamp, no local paths.
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags='-s -w -buildid=' -o /out/spate ./cmd/spate

# static-debian12 carries CA certificates and tzdata; :nonroot runs as 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/spate /spate
USER 65532:65532
EXPOSE 8080
ENV SPATE_ADDR=:8080
ENTRYPOINT ["/spate","ingest"]
