"""Nurture tracks: timed emails for leads that are not ready, hand-raise and unsubscribe."""
