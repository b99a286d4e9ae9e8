"""Configuration and onboarding endpoints."""
