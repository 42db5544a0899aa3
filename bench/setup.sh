#!/usr/bin/env bash
# The benchmark's anchors and load generator come from Debian: nginx (one worker serving the same
# bytes) and wrk. Installed when missing and we are root; otherwise say what to install.
# (autocannon, from npm, stands in for a missing wrk; nothing stands in for nginx.)
set -euo pipefail
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "bench/setup.sh: missing ${missing[*]}; install with: sudo apt-get install ${missing[*]}" >&2
fi
