"""Controlling: internal cost allocation and service usage, aggregated in PostgreSQL."""
