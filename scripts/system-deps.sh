#!/usr/bin/env bash
# System packages the test suite needs: Java 17 for PySpark's local mode, Debian's
# chromium for the report's browser test (driven by Playwright; no browser is downloaded),
# and PostgreSQL for the store tests.
# Installed with apt-get when missing and running as root; otherwise print the command.
set -euo pipefail
missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# the store tests run on a real PostgreSQL server: one answering on 127.0.0.1:5432, or a
# throwaway cluster the tests start from the installed binaries
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing system packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "The tests need these system packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
