#!/usr/bin/env bash
# Install what romanarchive needs from the OS: PostgreSQL 15 server binaries with the pgsphere and q3c
# extensions, STILTS (IVOA validators), SExtractor and SWarp (Debian/Ubuntu), then apply the upstream pgsphere fix needed on
# PostgreSQL >= 15.9.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pkgs=()
have_ext() { ls /usr/share/postgresql/*/extension/"$1".control >/dev/null 2>&1; }
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || pkgs+=(postgresql-15)
have_ext pg_sphere || pkgs+=(postgresql-15-pgsphere)
have_ext q3c || pkgs+=(postgresql-15-q3c)
command -v stilts >/dev/null || pkgs+=(stilts)  # taplint and tapquery for the TAP acceptance tests (brings java)
# Peers the catalog tests and benchmarks compare against (SExtractor, SWarp).
command -v source-extractor >/dev/null || pkgs+=(source-extractor)
command -v SWarp >/dev/null || pkgs+=(swarp)
command -v python3 >/dev/null || pkgs+=(python3 python3-venv)
python3 -c 'import ensurepip' 2>/dev/null || pkgs+=(python3-venv)
sudo=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then sudo="sudo"; else
    [ ${#pkgs[@]} -eq 0 ] || { echo "romanarchive needs: apt-get install -y ${pkgs[*]} (run as root)" >&2; exit 1; }
  fi
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  echo "installing ${pkgs[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
$sudo python3 "$here/sql/patch_pgsphere.py"
