"""The inbound service's domain core: no I/O."""
