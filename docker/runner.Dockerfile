# The job image of the docker backend: every job runs in a fresh container of
# it, one per step (compile, run). One image for all five languages, so the
# toolchains are where crates/sandbox/languages.toml expects them (/usr/bin).
#
# Built FROM the local Debian base that scripts/build-images.sh makes with
# debootstrap (no registry needed); on a machine with a registry,
# --build-arg BASE_IMAGE=debian:bookworm-slim works as well.
ARG BASE_IMAGE=code-runner-base:bookworm
FROM ${BASE_IMAGE}

# The JDK's post-install step wants the man directory that slim bases drop.
RUN mkdir -p /usr/share/man/man1 \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3 nodejs openjdk-17-jdk-headless gcc g++ libc6-dev \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/*.log

# PID 1 of every job container: runs the job's program, reaps, reports.
COPY docker/init.c /usr/src/code-runner-init.c
RUN gcc -std=gnu17 -O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
      -o /usr/libexec/code-runner-init /usr/src/code-runner-init.c

# Jobs run as this unprivileged user (the worker also passes 60000:60000).
# Nothing a job could use against another account is left: no setuid or
# setgid binaries, no password files, no root home; /etc/passwd and
# /etc/group are not readable by the job user (numeric ids work without them).
RUN useradd --uid 60000 --user-group --no-create-home --home-dir /work \
      --shell /usr/sbin/nologin runner \
 && mkdir -m 0700 /work && chown 60000:60000 /work \
 && find / -xdev -perm /6000 -type f -exec chmod a-s {} + \
 && rm -rf /root /etc/shadow /etc/shadow- /etc/gshadow /etc/gshadow- /etc/passwd- /etc/group- \
 && chmod 0600 /etc/passwd /etc/group

USER 60000:60000
WORKDIR /work
ENV LANG=C.UTF-8
ENTRYPOINT ["/usr/libexec/code-runner-init"]
LABEL org.opencontainers.image.title="code-runner job image" \
      org.opencontainers.image.description="python3, node, OpenJDK 17, gcc/g++ and code-runner-init"
