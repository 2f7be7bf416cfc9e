"""The OpenAI-compatible API (`/v1`), one feature in one folder: the request and response bodies
(`protocol.py`), OpenAI's error shape (`errors.py`), the routes (`router.py`) and the loaded
students behind them (`serving.py`)."""
