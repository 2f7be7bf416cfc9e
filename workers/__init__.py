"""The Celery workers and the pipeline stages they run."""

import app  # noqa: F401  (app sets the CPU-sharing OpenMP setting, which must precede torch)
