"""The short fault soak (bench/soak.py, which runs the long one): three small jobs, two of them
training a student, through a whole installation that shares no disk (private Postgres and Redis,
moto's S3 server, the real teacher, API, default and gpu worker) while each fault happens once at a
random moment: both workers killed with SIGKILL and replaced on empty disks, Redis restarted with
its messages lost, Postgres restarted, the object store cut off, the teacher slowed down.

Every job must end, succeeded or failed with a reason naming a fault; every artifact of every
succeeded job must download whole through the API with its sha256."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from soak import FAULTS, SoakConfig, run_soak  # noqa: E402


def test_every_job_ends_and_every_artifact_is_whole_through_every_fault(teacher_url, tmp_path):
    report = run_soak(SoakConfig(jobs=3, teacher_url=teacher_url, gap=(6.0, 15.0), train_share=0.67,
                                 settle_minutes=10, max_faults=len(FAULTS), workdir=tmp_path))
    summary = {"counts": report.counts, "artifacts": report.artifacts, "faults": report.faults, "jobs": report.jobs}
    assert sorted(fault["fault"] for fault in report.faults) == sorted(FAULTS), summary
    assert report.ok, summary
    assert report.counts["submitted"] == 3 and report.counts["succeeded"] >= 1, summary
    assert report.artifacts["checked"] > 0, summary
