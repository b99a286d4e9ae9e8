"""Approvals, audit trail and unlinked licences endpoints."""
