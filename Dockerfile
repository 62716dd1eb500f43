# LLMOps Tracker image: web (gunicorn), Celery worker and beat all run from it (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

RUN groupadd --system --gid 10001 tracker \
    && useradd --system --uid 10001 --gid tracker --home-dir /app --no-create-home tracker

# Dependencies first: this layer is rebuilt only when requirements.txt changes (psycopg ships its own libpq).
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=root:root . .

# Hashed, compressed static files baked into the image; the key only satisfies the settings at build time.
RUN DJANGO_DEBUG=false DJANGO_SECRET_KEY=collectstatic-only-not-a-secret DJANGO_ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var /app/media \
    && chown -R tracker:tracker /app/var /app/media

# The code stays root-owned and read-only to the process; var/ holds beat's schedule, media/ the import
# uploads (volumes in compose).
USER tracker

EXPOSE 8000
CMD ["gunicorn", "--config", "gunicorn.conf.py", "tracker.wsgi"]
