# The Sluice image: the static binary, the CA bundle and a config, nothing else.
# `make docker` builds bin/sluice, copies the build host's CA bundle to
# bin/ca-certificates.crt and runs `docker build` here (no image is pulled).
# FROM scratch: no shell, no package manager, nothing to patch but Sluice itself.
FROM scratch

COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/sluice /sluice
COPY configs/docker.yaml /etc/sluice/config.yaml
# The disk queue lives here; owned by the non-root user the process runs as.
COPY --chown=10001:10001 deploy/docker/var-lib-sluice/ /var/lib/sluice/

USER 10001:10001
VOLUME ["/var/lib/sluice"]
# 4317 OTLP gRPC, 4318 OTLP HTTP, 8888 own metrics, 13133 health check.
EXPOSE 4317 4318 8888 8889 13133

ENTRYPOINT ["/sluice"]
CMD ["--config", "/etc/sluice/config.yaml"]
