"""Notifications: alerts about what needs the MSP's attention and run summaries, sent to
Microsoft Teams and by email."""
