# `countersign serve` for a team; docker-compose.yml runs it with the variables in .env.example.
#   docker build -t countersign .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package is made of (tests, benchmarks and any .env stay out of the image).
COPY pyproject.toml README.md /src/
COPY approvals /src/approvals
COPY audit /src/audit
COPY classify /src/classify
COPY config /src/config
COPY console /src/console
COPY engines /src/engines
COPY gate /src/gate
COPY service /src/service
COPY snapshots /src/snapshots
RUN pip install /src && rm -rf /src

# A user of its own, not root. The audit key and the anchors live on two volumes mounted over these
# directories; a new named volume takes the directory's owner and mode (0700) from the image.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/countersign --shell /usr/sbin/nologin countersign \
 && install -d -o countersign -g countersign -m 0700 \
        /var/lib/countersign /var/lib/countersign/key /var/lib/countersign/anchors /var/lib/countersign/state
USER countersign
WORKDIR /var/lib/countersign
ENV XDG_STATE_HOME=/var/lib/countersign/state \
    COUNTERSIGN_AUDIT_KEY_FILE=/var/lib/countersign/key/audit.key \
    COUNTERSIGN_AUDIT_ANCHOR_FILE=/var/lib/countersign/anchors/anchors.jsonl

EXPOSE 3000
# SIGTERM (docker stop) drains: /readyz 503, in-flight work finishes (--drain-seconds, default 20).
STOPSIGNAL SIGTERM
ENTRYPOINT ["countersign"]
CMD ["serve", "--host", "0.0.0.0", "--port", "3000"]
