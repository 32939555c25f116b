"""Production entry point: ``gunicorn wsgi:app``."""

from portal import create_app
from portal.dispatch.services import freeze_start_up_objects, warm_up
from portal.extensions import db

app = create_app()
# Each worker loads the postal centroids and the partner snapshot before it serves, so
# the first inquiry it routes does not wait a second for them.
with app.app_context():
    warm_up(db.session)
    db.session.remove()
    db.engine.dispose()  # no connection opened here outlives it (gunicorn --preload forks)
freeze_start_up_objects()
