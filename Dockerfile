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

# The RDS CA bundle for DB_SSLMODE=verify-full (DB_SSLROOTCERT). Nothing is downloaded while the
# image builds: the deploy workflow fetches https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem,
# checks that it parses as certificates, and passes its directory as the named build context
# `rds-ca` (--build-context rds-ca=DIR), which replaces this stage. Built without it (compose,
# a laptop) the image carries an empty bundle: plain local connections work, verify-full fails
# loudly at start instead of connecting unverified.
FROM busybox:1.37.0-musl AS rds-ca
RUN touch /global-bundle.pem

FROM busybox:1.37.0-musl
# CA roots for HTTPS to AWS APIs (SSM, S3, SQS).
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=rds-ca /global-bundle.pem /usr/share/rates/rds-ca.pem
COPY --from=build /out/rates /usr/local/bin/rates
COPY --chmod=0755 entrypoint.sh /usr/local/bin/entrypoint.sh
COPY db/seed/rates.sql /usr/share/rates/rates.sql

# No SEED_FILE and no MIGRATE_ON_START: in AWS the deploy migrates and seeds with one-off tasks,
# and the services only check the schema; compose sets both for local use.
ENV HTTP_ADDR=:3000 \
    LOG_FORMAT=json

USER 65532:65532
EXPOSE 3000
# Liveness for plain `docker run`; the ALB and compose probe /readyz themselves.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/healthz"]
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
