"""Routing what-if: preview an edit of a partner's routing facts against recent leads."""
