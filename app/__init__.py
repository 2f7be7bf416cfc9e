"""vibetune's core: settings, the database, job specs, storage and the one place a student runs."""

import os

# torch (and vLLM's CPU build) use GNU OpenMP, whose threads spin about 300,000 times at every
# barrier before they sleep. On a CPU box where the teacher, the trainer and a served student share
# the cores, each process's spinning threads take the cores the others need; with a short spin a
# training step beside a busy teacher is several times faster and the teacher keeps its speed
# (figures in bench/cpu_sharing.py's results and the README). libgomp reads this once when it
# loads, so it is set before anything imports torch; the vLLM teacher the service starts inherits
# it. An explicit setting wins.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
