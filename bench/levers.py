"""Curation lever ablation: one set, the same test rows, each lever switched off in turn, in one run.

For each configuration and each training seed, it runs the set's whole job on a running service
(`make up`) and keeps the tuned student's per-row correctness. The configurations:

- `defaults`: every lever at the service's default;
- `no_<lever>`: that one lever off;
- `rationales` and `second_round` (`training.rounds: 2`, the error-driven round): those levers,
  off by default, turned on;
- `off`: every lever off, the pipeline before issue 14.

A lever's gain is `defaults - no_<lever>` in tuned accuracy (`<lever> - defaults` for the ones
turned on), averaged over the seeds. Its 95% interval is a paired bootstrap over the test rows:
the rows are resampled and the seeds kept, so each resample scores every configuration on the
same rows. A held job (a label short of its share) counts as its status, not a score. Results go
to `bench/results/levers_<set>[_<tag>].json`.

    python bench/levers.py [--set sms_spam] [--n 60] [--num-examples 150] [--seeds 1]
                           [--configs defaults,no_votes,...] [--tag NAME] [--api-key vt_...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import RESULTS, git_commit, measure  # noqa: E402
from quality_sets import SETS, build  # noqa: E402

from workers.statistics import paired_gain  # noqa: E402

#: Each configuration's curation options, and under `training` its training options (what is
#: left out is the service's default).
CONFIGS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "no_votes": {"votes": 1},
    "no_intent_check": {"intent_check": False},
    "no_plan_per_label": {"plan_per_label": False},
    "no_top_up": {"top_up_rounds": 0},
    "rationales": {"rationales": True},
    "second_round": {"training": {"rounds": 2}},
    "off": {"votes": 1, "intent_check": False, "plan_per_label": False, "top_up_rounds": 0,
            "min_label_share": 0, "seed_copies": 0},
}
#: Configurations that turn on a lever the defaults leave off: their gain is theirs minus the defaults'.
TURNED_ON = ("rationales", "second_round")
def tuned_rows(run: dict[str, Any]) -> list[bool] | None:
    """The tuned student's per-row correctness of a finished run (None when it was not trained)."""
    if run.get("status") != "succeeded" or not run.get("correct"):
        return None
    rows: list[bool] = run["correct"]["student"]
    return rows


def gains(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Each lever's gain, over the seeds where both configurations trained: the defaults minus the
    configuration without it, or (`TURNED_ON`) the configuration with it minus the defaults."""
    out: dict[str, Any] = {}
    base_runs = runs.get("defaults", [])
    for name, config_runs in runs.items():
        if name == "defaults":
            continue
        pairs = [(tuned_rows(b), tuned_rows(o)) for b, o in zip(base_runs, config_runs, strict=False)]
        usable = [(b, o) for b, o in pairs if b is not None and o is not None]
        if name in TURNED_ON:
            usable = [(o, b) for b, o in usable]
        out[name] = paired_gain([b for b, _ in usable], [o for _, o in usable]) if usable else \
            {"gain": None, "statuses": [r["status"] for r in config_runs]}
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("VIBETUNE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--api-key", default=os.environ.get("VIBETUNE_API_KEY"))
    parser.add_argument("--set", default="sms_spam", choices=list(SETS))
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--num-examples", type=int, default=150)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated: {', '.join(CONFIGS)}")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    parser.add_argument("--tag", default="", help="added to the results file's name, so a run keeps earlier ones")
    args = parser.parse_args(argv)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    if "defaults" not in names or any(c not in CONFIGS for c in names):
        parser.error(f"--configs needs `defaults` and names among {', '.join(CONFIGS)}")
    qs = build(args.set, args.n)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    path = args.results_dir / f"levers_{args.set}{'_' + args.tag if args.tag else ''}.json"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=args.url, timeout=60, headers=headers) as client:
        for seed in range(args.seeds):
            for name in names:
                curation = {k: v for k, v in CONFIGS[name].items() if k != "training"}
                result = measure(client, qs, args.num_examples, 0, seed, curation or None,
                                 training=CONFIGS[name].get("training"))
                runs[name].append(result)
                student = (result.get("models") or {}).get("student") or {}
                print(f"{name} seed {seed}: {result['status']}, tuned {student.get('accuracy')}, "
                      f"teacher {((result.get('models') or {}).get('teacher') or {}).get('accuracy')}, "
                      f"{result['wall_s'] / 60:.1f} min", flush=True)
                summary = {"set": args.set, "n": len(qs.rows), "num_examples": args.num_examples,
                           "seeds": args.seeds, "git_commit": git_commit(), "configs": {c: CONFIGS[c] for c in names},
                           "gains_vs_defaults": gains(runs), "turned_on": [c for c in names if c in TURNED_ON],
                           "runs": runs}
                path.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print("| configuration | tuned accuracy (per seed) | the lever's gain (95% CI) |")
    print("| --- | --- | --- |")
    for name in names:
        accs = [str(((r.get("models") or {}).get("student") or {}).get("accuracy", r["status"])) for r in runs[name]]
        gain = gains(runs).get(name)
        shown = "–" if not gain or gain.get("gain") is None else \
            f"{gain['gain']:+.3f} ({gain['ci95'][0]:+.2f} to {gain['ci95'][1]:+.2f})"
        print(f"| {name} | {', '.join(accs)} | {shown} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
