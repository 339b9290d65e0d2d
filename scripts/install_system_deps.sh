#!/usr/bin/env bash
# Offscreen rendering (videos, `soccerlab play --video`) needs OSMesa on a machine without a GPU.
# Installs Debian's libosmesa6 when it is missing and we are allowed to; otherwise says how.
set -u
if ldconfig -p 2>/dev/null | grep -q libOSMesa; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing libosmesa6 (offscreen rendering)"
  if ! apt-get install -y -q libosmesa6 >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libosmesa6 >/dev/null 2>&1
  fi
fi
if ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then
  echo "warning: libOSMesa not found; videos need it: sudo apt-get install libosmesa6" >&2
fi
exit 0
