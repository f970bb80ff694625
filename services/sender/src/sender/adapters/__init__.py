"""Adapters: the sender's tables and repositories, SNS, the rate limiter, Kafka consumers."""
