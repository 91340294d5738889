"""The hub: organisations and keys, lists, graded items, the change feed, match, feedback, audit.

Services (`ingest`, `feed`, `snapshot`, `match`, `feedback`, `orgs`, `audit`) work on a SQLAlchemy
engine and raise `hashhub.hub.errors.HubError`s; `hashhub.hub.app.create_app(settings)` puts a thin
FastAPI layer over them.
"""

MIGRATIONS = "hashhub:migrations"
