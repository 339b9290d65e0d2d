#!/usr/bin/env bash
# Debian packages soccerlab needs besides Python:
#   libosmesa6  offscreen rendering (videos, `soccerlab play --video`) on a machine without a GPU
#   postgresql  the PostgreSQL server the sweep tests start on loopback (sweeps across machines)
#   chromium    the headless browser the report test opens report.html in
# Installs what is missing when we are allowed to (root with apt-get); otherwise says how.
set -u
have_osmesa() { ldconfig -p 2>/dev/null | grep -q libOSMesa; }
have_postgresql() { command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }

missing=()
have_osmesa || missing+=(libosmesa6)
have_postgresql || missing+=(postgresql)
have_chromium || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -q "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null 2>&1
  fi
fi
have_osmesa || echo "warning: libOSMesa not found; videos need it: sudo apt-get install libosmesa6" >&2
have_postgresql || echo "warning: PostgreSQL not found; the PostgreSQL sweep test needs it: sudo apt-get install postgresql" >&2
have_chromium || echo "warning: chromium not found; the report's browser test needs it: sudo apt-get install chromium" >&2
exit 0
