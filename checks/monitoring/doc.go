// Package monitoring checks that what watches the service watches what the service emits: every
// application metric named by the Terraform monitoring module (alarms and the CloudWatch
// dashboard) and by the local Grafana dashboard is registered by the Go code (rates/internal/
// metrics), is published to CloudWatch by its EMF selection under the dimensions the alarm or
// widget asks for, and every alarm's runbook section exists in docs/operations.md.
package monitoring
