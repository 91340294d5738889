"""The browser UI, served by the hub and agent processes themselves (no separate front end).

`hub_views.mount(app)` and `agent_views.mount(app)` add server-rendered pages (Jinja2, plain HTML forms,
inline SVG charts) next to the JSON API without touching `/api/v1`. Browsers sign in with the same
keys the API takes; every page checks them with the app's own principal logic, so the UI can never
allow more than the API does.
"""
