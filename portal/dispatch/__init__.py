"""The portal side of routing: offers, expiry, geography and the what-if preview, around
the pure engine in ``routing/`` (named so it does not shadow it)."""
