"""A real vibetune worker with the real train stage, and recording stages after it (tests only).

Training tests need the real TRL run but not the teacher that evaluation calls, so `evaluate`
and `package` are recording stages here.
"""

from tests.support.stages import RecordingStage
from workers.main import main
from workers.stages import REGISTRY

if __name__ == "__main__":
    REGISTRY.update({name: RecordingStage(name, "gpu") for name in ("evaluate", "package")})
    main()
