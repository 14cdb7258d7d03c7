# One image for every service; docker-compose picks the command.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 COCKPIT_ENV=production
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY ingest ingest
COPY api api
COPY dashboard dashboard
COPY devices devices
COPY sql sql
RUN pip install --no-cache-dir . && useradd --system --uid 10001 cockpit
USER cockpit
ENTRYPOINT ["cockpit"]
