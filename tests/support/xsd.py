"""OpenNebula's official XSDs (release-7.4.0, Apache-2.0; see tests/xsd/SOURCE.md), vendored so a
clean clone validates without anything outside the repository. `ONEHA_XSD_DIR` overrides."""

import os
import re
from pathlib import Path

XSD_DIR = Path(os.environ.get("ONEHA_XSD_DIR") or Path(__file__).resolve().parents[1] / "xsd")
NS = "http://opennebula.org/XMLSchema"

_ROOT_TAG = re.compile(r"<([A-Z_]+)(\s|>|/)")


def with_namespace(xml: str) -> str:
    """oned answers carry no namespace; the schemas declare one. Put it on the root element."""
    if f'xmlns="{NS}"' in xml:
        return xml
    return _ROOT_TAG.sub(lambda m: f'<{m.group(1)} xmlns="{NS}"{m.group(2)}', xml, count=1)
