"""The version of every JSON document, ``.jsonl`` row and CSV header ``lrn`` writes.

One integer for the whole tool (``docs/schema.md`` defines every field and lists renamed
ones). Raise it when a field is renamed, removed or changes meaning; adding a field does not.
"""

from __future__ import annotations

from typing import Any

#: The output schema version, the first key of every JSON document and ``.jsonl`` row.
SCHEMA_VERSION = 1


def document(**fields: Any) -> dict[str, Any]:
    """A JSON document (or ``.jsonl`` row): ``{"schema": SCHEMA_VERSION, **fields}``."""
    return {"schema": SCHEMA_VERSION, **fields}
