"""Lists in and out of a hub as files: NCMEC-style XML, StopNCII JSON, CSV and NDJSON.

    from hashhub.interchange import export_list, import_file
    export_list(hub, "plat", out, "ncmec-xml", lists=["verified"])
    import_file(hub, Path("list.xml"), "iwf", "verified")      # format from the name, or fmt=...

The column mapping between the formats is in the README (section "interop").
"""

from __future__ import annotations

from hashhub.interchange.errors import FormatError
from hashhub.interchange.transfer import FORMATS, detect, export_list, import_file, parse_classification

__all__ = ["FORMATS", "FormatError", "detect", "export_list", "import_file", "parse_classification"]
