"""The peer of the whole-product comparison: a Django project protected by djangorestframework-api-key.

A minimal project as a Django team would deploy it with that library: ``startproject``'s settings
and middleware, DEBUG off, persistent database connections, SQLite in WAL mode as Keyward has it
(or a PostgreSQL database of its own), served by Keyward's gunicorn configuration unchanged:

    python -m bench.peer.manage migrate
    python -m bench.peer.manage seed_peer_keys --keys 100000
    gunicorn -c config/gunicorn.conf.py bench.peer.wsgi

It answers ``GET /P`` (a DRF view with ``permission_classes = [HasAPIKey]``) and ``GET /P0`` (the
same answer from a plain Django view, unprotected). The project is its own app, for its one
management command.
"""
