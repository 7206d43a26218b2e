# The native worker's image: the job image's toolchains (python3, node,
# OpenJDK 17, gcc/g++ in /usr/bin, where the language table expects them),
# Debian's bubblewrap and the code-runner binary, so that the worker runs
# jobs with the native backend (bubblewrap, a keeper per slot, cgroups,
# seccomp, per-slot uids) INSIDE this container -- no Docker socket, no
# `privileged`. docker-compose.native.yml runs it with the few settings the
# sandbox needs (docs/native-container.md says which and why).
#
# Built FROM the job image (scripts/build-images.sh runner), itself FROM the
# debootstrapped Debian base: nothing comes from a registry.
ARG RUNNER_IMAGE=code-runner-runner:latest
FROM ${RUNNER_IMAGE}

USER 0:0
# bubblewrap is not setuid on Debian 12 (it works through user namespaces);
# the sweep makes sure nothing else is either. The job image's /work (the
# docker backend's, private to its job user) goes: each native job gets a
# fresh tmpfs at /work inside its sandbox, and root here, without
# CAP_DAC_OVERRIDE, could not even look into it. /run is world-writable with
# the sticky bit (the engine copies its mode onto the tmpfs mounted there):
# the worker, root of its own user namespace, is not the uid that owns it.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends bubblewrap \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/*.log \
 && find / -xdev -perm /6000 -type f -exec chmod a-s {} + \
 && rmdir /work \
 && chmod 1777 /run

# release, or debug to reuse the binary a test run already built. Under
# /usr/local, which the sandbox hides (the keeper is the same binary, run
# through a descriptor).
ARG PROFILE=release
COPY target/${PROFILE}/code-runner /usr/local/bin/code-runner
# Runs the command as root of a user namespace of its own (root there is
# host uid 100000): see the script.
COPY docker/native-userns.sh /usr/local/libexec/code-runner-userns

WORKDIR /
ENV CODE_RUNNER_SANDBOX=native \
    RUST_LOG=info
ENTRYPOINT ["/usr/local/libexec/code-runner-userns", "/usr/local/bin/code-runner"]
CMD ["worker"]
LABEL org.opencontainers.image.title="code-runner native worker" \
      org.opencontainers.image.description="code-runner, bubblewrap, python3, node, OpenJDK 17, gcc/g++"
