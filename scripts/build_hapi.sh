#!/usr/bin/env bash
# Builds the HAPI FHIR test server jar (hapi_test_server/) with Maven, only when its sources changed since
# the last build (sha256 of pom.xml and src/ kept next to the jar). Prints the jar's path as the last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
project="$root/hapi_test_server"
jar="$project/target/hapi-test-server.jar"
stamp="$project/target/.source-sha256"

sources_sha() {
  (cd "$project" && find pom.xml src -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

current="$(sources_sha)"
if [ -f "$jar" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$current" ]; then
  echo "build_hapi: up to date ($jar)" >&2
else
  echo "build_hapi: building the HAPI FHIR test server with Maven (first build downloads ~430 MB)" >&2
  start=$(date +%s)
  mvn -B -q -Dstyle.color=never -f "$project/pom.xml" package -DskipTests >&2
  echo "$current" > "$stamp"
  echo "build_hapi: built in $(( $(date +%s) - start ))s" >&2
fi
echo "$jar"
