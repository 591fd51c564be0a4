"""Slack presentation of approval requests (Block Kit). Pure: values in, JSON-ready dicts out."""
