"""vibetune's core: settings, the database, job specs, storage and the one place a student runs."""

import os

# torch (and vLLM's CPU build) use GNU OpenMP, whose threads spin about 300,000 times at every
# barrier before they sleep. On a CPU box where the teacher, the trainer and a served student share
# the cores, each process's spinning threads take the cores the others need: a training step of the
# bundled student took 75 s beside a busy teacher, 2.7 s alone. With a short spin it takes 8 s
# beside the teacher and still 2.7 s alone, the teacher keeps its speed (bench/cpu_sharing.py).
# libgomp reads this once when it loads, so it is set before anything imports torch; processes
# the service starts (the vLLM teacher, llama.cpp) inherit it. An explicit setting wins.
os.environ.setdefault("GOMP_SPINCOUNT", "1000")
