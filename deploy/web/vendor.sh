#!/usr/bin/env bash
# Refreshes the vendored browser assets under runtime/webassets/vendor/ from the npm packages that
# deploy/web/package-lock.json pins (installed by fetch.sh): the few files mlbus serves, each
# package's licence beside them, and VERSIONS. Run it after changing package.json, then commit.
# The services serve these files themselves; nothing is fetched at run time (clusters run offline).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
modules="$(bash "$here/fetch.sh")/node_modules"
out="$here/../../runtime/webassets/vendor"
rm -rf "$out"
mkdir -p "$out/swagger-ui" "$out/htmx" "$out/uplot"
cp "$modules/swagger-ui-dist/"{swagger-ui-bundle.js,swagger-ui.css,LICENSE,NOTICE} "$out/swagger-ui/"
cp "$modules/htmx.org/dist/htmx.min.js" "$modules/htmx.org/LICENSE" "$out/htmx/"
cp "$modules/uplot/dist/"{uPlot.iife.min.js,uPlot.min.css} "$modules/uplot/LICENSE" "$out/uplot/"
# The bundle ends with a source-map comment naming a file that is not shipped.
sed -i '/^\/\/# sourceMappingURL=/d' "$out/swagger-ui/swagger-ui-bundle.js"
for pkg in swagger-ui-dist htmx.org uplot; do
  echo "$pkg $(node -p "require('$modules/$pkg/package.json').version")"
done > "$out/VERSIONS"
cat "$out/VERSIONS"
