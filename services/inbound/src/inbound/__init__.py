"""inbound: patients' SMS replies, delivered by SNS, become trustworthy events."""
