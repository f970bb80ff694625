"""The whole system on one machine, for developers and the end-to-end tests."""
