"""Adapters: database tables and repository, SNS signature checks, Kafka consumers, HTTP."""
