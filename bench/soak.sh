#!/usr/bin/env bash
# Mixed traffic for MINUTES (10 by default) on loopback, errors, p99s and memory: see bench/soak.py.
#   bench/soak.sh [minutes]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "error: wrk is missing: apt-get install wrk" >&2; exit 2; }
exec .venv/bin/python bench/soak.py --minutes "${1:-10}"
