# One image for every role: web (gunicorn), worker and beat (celery), flower,
# and the one-shot `migrate`. docker-compose.yml picks the role by command.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system campaign && useradd --system --gid campaign --home /app campaign

WORKDIR /app
# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p sender && touch sender/__init__.py \
    && pip install . \
    && pip uninstall -y campaign-sender \
    && rm -rf sender build *.egg-info

COPY sender ./sender
COPY templates ./templates
COPY audiences ./audiences
COPY worker.py ./
# Editable: the code finds templates/ beside the package, as in a checkout.
RUN pip install --no-deps -e . && chown -R campaign:campaign /app

USER campaign
EXPOSE 8000 9808
# Logs go to stdout as JSON (not a terminal); see docs/OPERATIONS.md.
CMD ["gunicorn", "-c", "python:sender.web.gunicorn_conf", "--bind", "0.0.0.0:8000", "--workers", "4", "--access-logfile", "-", "sender.web:create_app()"]
