# One image for every service; docker-compose picks the command.
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 COCKPIT_ENV=production
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core core
COPY ingest ingest
COPY rollups rollups
COPY patrol patrol
COPY ops ops
COPY api api
COPY dashboard dashboard
COPY devices devices
COPY sql sql
# /var/lib/cockpit: the ingest workers' journals (a volume each; named volumes take this owner)
RUN pip install --no-cache-dir . && useradd --system --uid 10001 cockpit \
    && install -d -o cockpit -g cockpit /var/lib/cockpit/spool
USER cockpit
ENTRYPOINT ["cockpit"]
