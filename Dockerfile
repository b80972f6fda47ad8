# syntax=docker/dockerfile:1
# verbcal: API + dashboard (`verbcal serve`), job workers (`verbcal worker`) and migrations
# (`verbcal migrate`) from one image. No secrets in here: they come from the environment.
ARG PYTHON_IMAGE=python:3.12-slim

# ---------------------------------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies first, so this layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY README.md alembic.ini ./
COPY calibrators ./calibrators
COPY prompts ./prompts
COPY app ./app
COPY migrations ./migrations
# Editable: `verbcal migrate` finds migrations/ next to app/, so the code stays in /app.
RUN pip install --no-deps -e . \
    && python -m compileall -q /app/app /app/calibrators /app/prompts /app/migrations

# -------------------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VERBCAL_DATABASE_URL=sqlite:////data/verbcal.db
RUN groupadd --system --gid 10001 verbcal \
    && useradd --system --uid 10001 --gid verbcal --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin verbcal \
    && mkdir /data \
    && chown verbcal:verbcal /data
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
USER verbcal
VOLUME ["/data"]
EXPOSE 8000
# The slim image has no curl; Python's urllib is enough for a liveness probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["verbcal", "serve", "--host", "0.0.0.0", "--port", "8000"]
