"""A real vibetune worker whose registry holds the recording test stages (tests only).

`python -m tests.support.stage_worker --queue default` is `python -m workers.main` with the
stages of tests/support/stages.py registered first, so the real Celery worker, queue and
pipeline runner can be exercised before the real stages exist.
"""

from tests.support.stages import recording_registry
from workers.main import main
from workers.stages import REGISTRY

if __name__ == "__main__":
    REGISTRY.update(recording_registry(gpu_stages=("train",)))
    main()
