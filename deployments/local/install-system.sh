#!/usr/bin/env bash
# System packages the local profile needs; installs only what is missing (idempotent).
# Node.js/npm run Azurite; docker.io and mmdebstrap run the scoring images (release pipeline);
# haproxy fronts each environment's replicas (backends/local/haproxy.py runs its own instance,
# with its own config, by PID: the package's system service is neither needed nor used);
# wrk is make bench's load generator; prometheus scrapes the scoring replicas and HAProxy
# (backends/local/prometheus.py runs its own instance by PID, like haproxy).
set -euo pipefail
need=()
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v dockerd >/dev/null || need+=(docker.io)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v wrk >/dev/null || need+=(wrk)
command -v prometheus >/dev/null || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]} (run as root, or install them yourself)" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The Debian package enables and starts a system-wide haproxy (its default config serves
# nothing). Ours never talks to it; stop it where systemd runs it, so it holds no resources.
# The same for prometheus: the package's service would scrape nothing of ours and hold :9090.
for service in haproxy prometheus; do
  if [[ " ${need[*]} " == *" $service "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now "$service.service" >/dev/null 2>&1 || true
  fi
done
