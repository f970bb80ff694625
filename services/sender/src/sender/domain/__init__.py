"""The sender's domain: which reminders go, what they say, how fast. No I/O here."""
