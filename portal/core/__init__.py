"""The core every area stands on: models, the lead lifecycle and its transition table, the
one domain error, the request boundary, the job registry and mail."""
