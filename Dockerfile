# Havarti's production image: one image, two commands (web and downloader).
# Build: docker build -t havarti .   Run both with compose.yaml.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PACKAGE_CACHE=/data \
    PORT=8080

WORKDIR /app
COPY pyproject.toml README.md ./
COPY havarti ./havarti
# gunicorn reads its worker settings (threads, slow-client guards) from its working directory.
COPY gunicorn.conf.py ./
RUN pip install . \
    && useradd --system --create-home --home-dir /home/havarti havarti \
    && mkdir -p /data && chown havarti /data

USER havarti
VOLUME /data
EXPOSE 8080

# The web process (the Procfile's `web`); compose.yaml runs the downloader from the same image.
CMD ["sh", "-c", "exec gunicorn -w 3 --preload -b 0.0.0.0:$PORT havarti:app"]
