# Redis for docker-compose.yml, from Debian's redis-server package, so that
# nothing has to be pulled from a registry. Append-only file on (the seed's
# broker keeps its queue across restarts), data under /data (a volume).
ARG BASE_IMAGE=code-runner-base:bookworm
FROM ${BASE_IMAGE}

RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/*.log \
 && mkdir -p /data && chown redis:redis /data

USER redis
WORKDIR /data
VOLUME /data
EXPOSE 6379
# Reachable only on the compose network (the port is not published).
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", \
     "--appendonly", "yes", "--appendfsync", "everysec", "--dir", "/data"]
LABEL org.opencontainers.image.title="code-runner redis (Debian's redis-server)"
