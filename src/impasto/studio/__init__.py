"""impasto studio: a local web app over the library (``impasto serve``, the ``studio`` extra).

The studio drives the library, it does not re-implement it: the page's forms are built from the
method table and the methods' config dataclasses, jobs run through ``pipeline.prepare`` /
``stylize_one``, ``frames.stylize_clip`` and ``pipeline.train_model``, and progress is the
library's ProgressEvents.

- ``store``: the SQLite database (WAL): jobs, their events, uploads. Every process opens it.
- ``uploads``: what an upload is, decided by decoding it; caps in bytes and pixels.
- ``forms``: the methods' and trainings' fields for the page; a job request checked and typed.
- ``runner``: one job run with the library (in a worker).
- ``worker``: the worker process: claims queued jobs, heartbeats, cancels.
- ``supervisor``: in the web process: starts the workers, restarts them, requeues their jobs.
- ``app``: the FastAPI routes, the token check and the event stream; ``static/``: the page.

Nothing here is imported by ``import impasto``.
"""
