"""The manufacturer's qualification and ranking rules, versioned, and manual lead merges."""
