"""Tracing, the request id and logging: the only place that knows OpenTelemetry's setup."""
