# syntax=docker/dockerfile:1
# The production image: gunicorn serving scrm.wsgi as a non-root user; the same image runs the Celery
# worker and beat (see docker-compose.yml). Built in two stages so that Node.js, npm and gettext, needed
# only to assemble static files and translations, stay out of the image that runs.

ARG PYTHON_IMAGE=python:3.11-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends gettext nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app

# Front-end packages (Bootstrap, icons, ECharts), exactly as package-lock.json pins them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error

# Python dependencies, pinned by requirements.lock. pyproject.toml declares no packages, so installing
# "." installs only the dependencies; the code runs from /app.
COPY pyproject.toml requirements.lock ./
RUN python -m venv /opt/venv \
 && pip install -c requirements.lock . \
 && rm -rf build *.egg-info

COPY . .
# collectstatic runs with the production storage (hashed, compressed files and their manifest), so the
# settings get placeholders for the variables production requires; nothing here connects to them.
RUN export DJANGO_ENV=production SECRET_KEY=build-only-placeholder DATABASE_URL=sqlite:////tmp/build.sqlite3 \
           REDIS_URL=redis://127.0.0.1:6379/0 ALLOWED_HOSTS=localhost \
 && python manage.py collectstatic --noinput -v0 \
 && python manage.py compilemessages -v0 --ignore=node_modules --ignore=staticfiles \
 && rm -f /tmp/build.sqlite3


FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    DJANGO_ENV=production \
    WEB_CONCURRENCY=3
RUN groupadd --system --gid 10001 scrm \
 && useradd --system --uid 10001 --gid scrm --home-dir /app --no-create-home --shell /usr/sbin/nologin scrm
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
RUN mkdir -p /app/media && chown scrm:scrm /app/media
USER scrm
EXPOSE 8000
# WEB_CONCURRENCY sets gunicorn's worker count.
CMD ["gunicorn", "scrm.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
