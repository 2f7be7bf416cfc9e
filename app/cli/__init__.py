"""Client and operations code: the `vibetune` command (`main.py`), its client commands
(`commands.py`), the HTTP client (`client.py`), the text it prints (`output.py`), what `make up`
runs (`supervisor.py`) and the local Postgres/Redis check (`local_services.py`).

Nothing is imported here: `python3 -m app.cli.local_services` runs before the virtual environment
exists, with the standard library only."""
