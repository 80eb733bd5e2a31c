# syntax=docker/dockerfile:1.7
# The rates service image: a static binary on busybox (for /bin/sh and the entrypoint script),
# running as a non-root numeric user, happy with a read-only root filesystem.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Dependencies first: this layer stays cached while only code changes.
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY internal/ internal/
COPY db/ db/
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/rates ./cmd/rates

FROM busybox:1.37.0-musl
# CA roots for HTTPS to AWS APIs (SSM, S3, SQS) and for verify-full connections to RDS.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/rates /usr/local/bin/rates
COPY --chmod=0755 entrypoint.sh /usr/local/bin/entrypoint.sh
COPY db/seed/rates.sql /usr/share/rates/rates.sql

ENV HTTP_ADDR=:3000 \
    LOG_FORMAT=json \
    SEED_FILE=/usr/share/rates/rates.sql

USER 65532:65532
EXPOSE 3000
# Liveness for plain `docker run`; the ALB and compose probe /readyz themselves.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/healthz"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
