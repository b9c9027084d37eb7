"""Observability of the service: JSON logs, Prometheus metrics, OpenTelemetry spans, overhead timing."""
