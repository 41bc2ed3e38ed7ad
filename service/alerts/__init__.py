"""Alerts to webhooks, read off the read model (:mod:`.alerter`)."""
