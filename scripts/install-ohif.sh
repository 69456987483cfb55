#!/usr/bin/env bash
# Installs OHIF Viewer v3 (npm package @ohif/app, whose tarball ships a built dist/) into vendor/ohif/, which
# radgate serves at /viewer. npm fetches the tarball from the registry and checks its integrity; nothing is
# fetched at run time. Run by `make peers` (and so `make test`); skipped when the pinned version is present.
set -euo pipefail
VERSION="${OHIF_VERSION:-3.13.2}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/vendor/ohif"
if [ -f "$DEST/VERSION" ] && [ "$(cat "$DEST/VERSION")" = "$VERSION" ] && [ -f "$DEST/dist/index.html" ]; then
  echo "OHIF viewer: @ohif/app $VERSION present"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "OHIF viewer: npm is missing; run scripts/install-peers.sh (it installs Debian's npm) first" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "OHIF viewer: installing @ohif/app $VERSION with npm"
(cd "$work" && npm pack "@ohif/app@$VERSION" --silent >/dev/null)
tar -xzf "$work"/ohif-app-"$VERSION".tgz -C "$work"
[ -f "$work/package/dist/index.html" ] || { echo "OHIF viewer: the tarball has no dist/index.html" >&2; exit 1; }
rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp"
mv "$work/package/dist" "$DEST.tmp/dist"
cp "$work/package/LICENSE" "$DEST.tmp/LICENSE"
echo "$VERSION" > "$DEST.tmp/VERSION"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "OHIF viewer: done ($DEST)"
