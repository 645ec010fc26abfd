"""Clients of Asterisk itself: ARI REST, AMI, and the contact sources (AMI, CLI)."""
