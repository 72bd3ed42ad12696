# The dashboard (Streamlit) for Cloud Run: attendees by default, presenters by IAP or a token.
# No torch and no model here: the dashboard calls model backends over HTTP.
#
# Build and deploy (from the repository root; see docs/dashboard.md):
#   docker build -t REGION-docker.pkg.dev/PROJECT/serving/dashboard:1 .
#   docker push REGION-docker.pkg.dev/PROJECT/serving/dashboard:1
#   python -m lib deploy dashboard --image REGION-docker.pkg.dev/PROJECT/serving/dashboard:1 --dry-run
# Try it: docker run --rm -p 8080:8080 -e PRESENTER_TOKEN=... REGION-docker.pkg.dev/PROJECT/serving/dashboard:1
FROM python:3.11-slim

# APP_MODE=attendee is the public default: only Classify and Accuracy without presenter access.
# The Streamlit upload limit (enforced by its server, HTTP 413) and the page's own check agree.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8080 \
    APP_MODE=attendee \
    UPLOAD_MAX_MB=10 \
    STREAMLIT_SERVER_MAX_UPLOAD_SIZE=10 \
    PETS_CACHE_DIR=/tmp/pets-cache \
    HOME=/home/app

WORKDIR /app
COPY requirements.txt ./
RUN pip install -r requirements.txt \
    && useradd --uid 10001 --create-home --home-dir /home/app --shell /usr/sbin/nologin app

# Code stays owned by root: the app user can read it, not change it.
COPY lib/ lib/
COPY app_pages/ app_pages/
COPY .streamlit/config.toml .streamlit/config.toml
COPY streamlit_app.py models.toml ./
# The report the Accuracy page shows before any run of this deployment exists (64 KB of records).
COPY artifacts/first-run/ artifacts/first-run/

USER 10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_stcore/health' % os.environ.get('PORT', '8080'), timeout=4)"]

# Cloud Run sets $PORT. WebSockets work on Cloud Run, and the page and its WebSocket share one
# origin, so XSRF protection (a cookie checked on uploads) and CORS protection both stay on.
CMD ["sh", "-c", "exec streamlit run streamlit_app.py --server.port=${PORT} --server.address=0.0.0.0 --server.headless=true --server.enableXsrfProtection=true --server.enableCORS=true --server.fileWatcherType=none --server.runOnSave=false --browser.gatherUsageStats=false --client.toolbarMode=minimal"]
