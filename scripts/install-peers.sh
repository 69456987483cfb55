#!/usr/bin/env bash
# Installs the real peers radgate's tests talk to (Debian packages), only those missing.
#   dcmtk            storescu, echoscu, storescp, dcmj2pnm, dcmp2pgm, dsrdump, dcmpschk
#   dicom3tools      dciodvfy (IOD validator)
#   orthanc          the PACS peer; orthanc-dicomweb its DICOMweb plugin
#   postgresql       the production database (tests start a throwaway cluster)
#   libpixelmed-java PixelMed's DicomSRValidator (TID 1500 content checks); Java runtime comes with it
#   chromium         the browser the Playwright sign-in test drives (executable_path=/usr/bin/chromium;
#                    Playwright's own browser download is never used)
#   openssl          makes the throwaway certificates of the TLS tests
#   npm              installs OHIF Viewer (@ohif/app) into vendor/ohif (scripts/install-ohif.sh, run after this)
set -euo pipefail
need=()
command -v storescu >/dev/null || need+=(dcmtk)
command -v dciodvfy >/dev/null || need+=(dicom3tools)
command -v Orthanc >/dev/null || [ -x /usr/sbin/Orthanc ] || need+=(orthanc)
ls /usr/share/orthanc/plugins*/libOrthancDicomWeb.so >/dev/null 2>&1 || ls /usr/lib/orthanc/*DicomWeb* >/dev/null 2>&1 \
  || need+=(orthanc-dicomweb)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -f /usr/share/java/pixelmed.jar ] || need+=(libpixelmed-java)
command -v java >/dev/null || need+=(default-jre-headless)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v openssl >/dev/null || need+=(openssl)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -eq 0 ]; then
  echo "test peers: all present"
  exit 0
fi
echo "test peers: installing ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's packages may start services on install; tests start their own, on their own ports.
$SUDO service orthanc stop >/dev/null 2>&1 || true
$SUDO service postgresql stop >/dev/null 2>&1 || true
echo "test peers: done"
