"""The daemon's HTTP server: ``/healthz``, ``/readyz``, ``/metrics`` (:mod:`.server`)."""
