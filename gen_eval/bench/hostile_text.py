"""Bad text submissions for the robustness corpus (issue 22): each must be one error line naming the
file and line, never a traceback or a half-scored row.

The corpus is scored against ``digits:test``; a text file is read (and refused) before its kind is
compared with the reference's, so every case here fails on its own fault.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def text_cases(root: Path) -> dict[str, str]:
    """Write the bad text submissions under ``root``: submission name -> expected error fragment."""
    from gen_eval.kinds.text import MAX_LENGTH

    cases = {
        "text_invalid_utf8": ("samples.txt", b"anna\nb\xe9a\n", "samples.txt: line 2 is not valid UTF-8"),
        "text_binary": (
            "samples.txt",
            b"anna\n\x89PNG\x00\x00\x01",
            "line 2 holds a NUL byte: this is a binary file",
        ),
        "text_blank_line": ("samples.txt", b"anna\n\nbob\n", "line 2 is blank"),
        "text_long_line": (
            "samples.txt",
            b"anna\n" + b"x" * (MAX_LENGTH + 1) + b"\n",
            f"line 2 has {MAX_LENGTH + 1:,} characters, over the limit of {MAX_LENGTH}",
        ),
        "text_empty": ("samples.txt", b"", "samples.txt: the file is empty"),
        "text_bad_jsonl": (
            "samples.jsonl",
            b'{"text": "anna"}\n{"text": "bob"\n',
            "samples.jsonl: line 2 is not JSON",
        ),
        "text_jsonl_no_text": (
            "samples.jsonl",
            json.dumps({"name": "anna"}).encode() + b"\n",
            'needs a string field "text"',
        ),
    }
    expected = {}
    for name, (file, data, fragment) in cases.items():
        (root / name).mkdir()
        (root / name / file).write_bytes(data)
        expected[name] = fragment
    return expected
