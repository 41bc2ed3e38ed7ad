# spreadwatch: the daemon, on Interactive Brokers (or the fake gateway) and PostgreSQL.
# Build: docker build -t spreadwatch .   Run: see docker-compose.yml

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --no-cache-dir -r requirements.lock
# setup.py compiles the hot modules where a C compiler is found; this slim image has
# none, so the package installs as pure Python (only replay is slower for it)
COPY pyproject.toml setup.py README.md ./
COPY rules rules
COPY service service
COPY brokers brokers
COPY migrations migrations
COPY examples examples
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps .

FROM python:3.11-slim
RUN groupadd --gid 10001 spreadwatch \
    && useradd --uid 10001 --gid 10001 --create-home spreadwatch
COPY --from=build /opt/venv /opt/venv
COPY docker/entrypoint.sh /usr/local/bin/spreadwatch-entrypoint
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SPREADWATCH_DATA_DIR=/home/spreadwatch/data \
    SPREADWATCH_HTTP_HOST=0.0.0.0 \
    SPREADWATCH_HTTP_PORT=8080
USER 10001:10001
WORKDIR /home/spreadwatch
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["spreadwatch-entrypoint"]
CMD ["run"]
