"""Quota sets and limits: QuotaService (servicer) and its quota sets."""
