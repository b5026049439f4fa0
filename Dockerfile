# The reconciler as a container, for CI and cron jobs (see examples/cron/cronjob.yaml):
#   docker build -t reconciler:0.1.0 .
#   docker run --rm -v "$PWD:/work" -e RECONCILER_REGISTRY reconciler:0.1.0 --dry-run
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY pyproject.toml README.md /src/
COPY reconciler /src/reconciler
COPY schemas /src/schemas
RUN pip install /src && rm -rf /src

RUN useradd --create-home --uid 10001 reconciler
USER 10001
# Mount the repository holding sources.d/ here.
WORKDIR /work
ENTRYPOINT ["reconcile"]
CMD ["--dry-run"]
