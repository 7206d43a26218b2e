# The service image: the code-runner binary, for both `code-runner api` and
# `code-runner worker` (docker-compose.yml runs one of each). The binary is
# built on the host (scripts/build-images.sh runs `cargo build --release`), so
# no Rust toolchain has to be fetched into the build; it links against the
# same Debian 12 glibc as this base.
#
# The worker runs jobs in sibling containers through the engine's socket
# (--sandbox docker), so this image needs no toolchain; the job image is
# docker/runner.Dockerfile.
ARG BASE_IMAGE=code-runner-base:bookworm
FROM ${BASE_IMAGE}

# release, or debug to reuse the binary a test run already built.
ARG PROFILE=release
COPY target/${PROFILE}/code-runner /usr/local/bin/code-runner

ENV CODE_RUNNER_BIND=0.0.0.0:8000 \
    RUST_LOG=info
EXPOSE 8000
# An unprivileged default; the worker's service runs as root to reach the
# engine's socket (see docker-compose.yml).
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/code-runner"]
CMD ["api"]
LABEL org.opencontainers.image.title="code-runner service (api and worker)"
