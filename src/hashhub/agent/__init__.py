"""The member agent: follows hubs, keeps a local copy of their lists, scans media against it.

    store.py     the local database (SQLite or PostgreSQL): hubs, items, decisions, reviews, reports
    sync.py      follows each hub's snapshot and feed from a saved cursor (a resumable iterator)
    matcher.py   the in-memory indexes and match metadata, refreshed from the store
    policy.py    matches -> action (`block`, `block_and_report`, `review`, `allow`) from a TOML file
    scanner.py   bytes or files -> hashes -> matches -> decision; all cores or a Dask cluster
    review.py    the human review queue; reports.py the report drafts; outbox.py hits and feedback
    app.py       the FastAPI application (`hashhub agent serve`)

The agent never imports `hashhub.hub`: it reaches hubs only through their HTTP API.
"""
