"""Emulators of Microsoft Graph and the PSAs: real HTTPS servers on loopback that follow the
vendors' documented API shapes, so the product's real clients run against them unchanged.
Used by the demo and the integration tests; never deployed."""
