"""The member agent: follows hubs, keeps a local copy of their lists, scans media against it.

    models.py, db.py   the local store's tables and engine (SQLite default, PostgreSQL by URL)
    store.py           hubs and their cursors, items, and the change stream replicas follow
    hubclient.py       HTTP to one hub: snapshot, feed, hits, feedback (the only way to a hub)
    items.py, sync.py  hub items parsed; sync as a resumable iterator (page + cursor per txn)
    matcher.py         the in-memory indexes and match metadata, refreshed from the store
    policy.py          matches -> action (`block`, `block_and_report`, `review`, `allow`), TOML
    scanner.py         bytes or fingerprints -> hashes -> matches -> verdict -> recorded decision
    backlog.py         folders on every core, or hashed on a Dask cluster
    decisions.py, review.py, reports.py, outbox.py   what is recorded, reviewed, drafted, owed
    settings.py, runtime.py, app.py, api/             `hashhub agent serve`

The agent never imports `hashhub.hub`: it reaches hubs only through their HTTP API.
"""
