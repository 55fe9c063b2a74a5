"""What ``codex mask`` says about its findings: a location per line, JSON lines, or one SARIF 2.1.0 document.

Every format names the rule, family, file and position of a secret; none ever contains the secret.
SARIF is for code-scanning UIs (GitHub, GitLab, Azure DevOps): rules are listed once with their
descriptions, and each result points at the masked bytes (start line, byte offset and length).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, TextIO

from codex_cli import __version__
from codex_cli.masking.custom import Policy
from codex_cli.masking.files import STDIN_NAME, FileFinding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


class Report:
    """Collects findings in one of the formats (None: say nothing) and writes them to ``out``."""

    def __init__(self, format: Optional[str], out: TextIO, policy: Optional[Policy] = None) -> None:
        self.format = format
        self._out = out
        self._policy = policy
        self._results: list[FileFinding] = []

    def add(self, item: FileFinding) -> None:
        f = item.finding
        if self.format == "locations":
            self._out.write(f"{item.file}:{f.line}:{f.column}: {f.rule} ({f.family} secret)\n")
        elif self.format == "json":
            record = {"rule": f.rule, "family": f.family, "file": item.file, "line": f.line, "column": f.column,
                      "length": f.length}
            self._out.write(json.dumps(record) + "\n")
        elif self.format == "sarif":
            self._results.append(item)
        self._out.flush()

    def close(self) -> None:
        """End of input: a SARIF document is written now, whole."""
        if self.format == "sarif":
            json.dump(sarif(self._results, self._policy), self._out, indent=2)
            self._out.write("\n")
            self._out.flush()


def sarif(findings: list[FileFinding], policy: Optional[Policy] = None) -> dict:
    """The findings as a SARIF 2.1.0 log: one run, every rule described once, one result per secret."""
    from codex_cli.masking.rules import RULES

    rules = [(r.id, r.family, r.description) for r in RULES]
    rules += [(r.id, r.family, r.description or "a rule from mask.rules") for r in (policy.rules if policy else ())]
    index = {rule_id: i for i, (rule_id, _, _) in enumerate(rules)}
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "codex mask", "version": __version__,
                "rules": [{"id": rule_id, "name": rule_id, "shortDescription": {"text": f"{family} secret"},
                           "fullDescription": {"text": description}, "defaultConfiguration": {"level": "error"},
                           "properties": {"family": family, "tags": ["security", "secret"]}}
                          for rule_id, family, description in rules],
            }},
            "results": [_result(item, index) for item in findings],
        }],
    }


def _result(item: FileFinding, index: dict[str, int]) -> dict:
    f = item.finding
    return {
        "ruleId": f.rule, "ruleIndex": index[f.rule], "level": "error",
        "message": {"text": f"A {f.family} secret ({f.rule}, {f.length} bytes); codex mask replaces it."},
        "locations": [{"physicalLocation": {
            "artifactLocation": {"uri": _uri(item.file)},
            # columns are bytes here, and SARIF counts columns in characters: the byte range says it exactly
            "region": {"startLine": f.line, "byteOffset": f.offset, "byteLength": f.length},
        }}],
    }


def _uri(file: str) -> str:
    if file == STDIN_NAME:
        return "stdin"
    path = Path(file)
    return path.as_uri() if path.is_absolute() else path.as_posix()
