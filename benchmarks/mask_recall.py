"""Recall and false alarms of ``codex mask`` on the peers' own test cases (gitleaks, detect-secrets, trufflehog).

    python benchmarks/mask_recall.py --gitleaks DIR --detect-secrets DIR [--trufflehog DIR] [--show N]

The cases are read at run time from local checkouts of the peers (see ``benchmarks/peers/``); nothing of
theirs is stored here. A true positive counts as caught when ``codex mask`` changes the text and no
8-character piece of the credential (the whole credential, when shorter) is left in the output, so a
key masked only in part counts as missed. The credential is the secret part of what the peer reports:
a SAS token's signature, a connection string's Secret=/AccountKey= value, the part after the user in
user:password.

A peer's negative case tests one rule: "this is no Telegram token". Some still hold a credential, and
codex masks those on purpose; they are counted apart, never silently:

- quoting: detect-secrets expects the keyword plugin to skip a value only for a language's quoting
  rule ("Double quotes required" in C, …): a credential all the same;
- name-keyed: a random value (12+ characters, 3+ bits of entropy per character) assigned to a
  credential's name (``xai_token = '…'``, ``PASSWORD=…``), which the issue asks codex to mask
  whatever its format; every such case is one codex's name-keyed rules alone masked, less those in
  ``NO_CREDENTIAL_ALL_THE_SAME`` (a placeholder in words, …), which stay false alarms;
- listed: the cases in ``HOLDS_A_CREDENTIAL``, each with its reason.

Every other altered negative is a false alarm. Prints a row per family and source, the totals for the
issue's families and for all, and the peers' commits; ``--show N`` prints up to N misses, false alarms
and set-apart cases per family.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import Case, Problem, all_cases  # noqa: E402

from codex_cli.masking.stream import ByteMasker, Finding  # noqa: E402

WINDOW = 8
# detect-secrets keyword cases expected to be left alone for a language's quoting rule, not because the
# value is no secret: their notes carry the test file's own comment.
QUOTING_RULES = ("quotes required", "quotes_required", "secret without quotes", "does not match single-quote",
                 "double quotes", "single quote")
# Families beyond the issue's list (scored, but apart from its totals).
BEYOND_THE_ISSUE = ("azure-other",)
# codex rules that mask a value because of the name it is assigned to.
NAME_KEYED_RULES = re.compile(r"credential-assignment|credential-comparison|.*-named.*|cloudflare-api-key|"
                              r"discord-token|mailgun-signing-key|linear-client-secret|twilio-auth-token|datadog-key|"
                              r"okta-token|algolia-key|wandb-api-key")
# (source, a piece of the case's text) -> why the negative case still holds a credential.
HOLDS_A_CREDENTIAL = {
    ("detect-secrets", "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"):
        "a GitHub token in GitLab's negative cases ('GitLab is not GitHub')",
    ("gitleaks", "Authorization: Basic eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"):
        "a JSON Web Token sent as the credential of an Authorization header",
    ("detect-secrets", "_authToken=743b294a-cd03-11ec-9d64-0242ac120002"):
        "an npm auth token in the legacy UUID format (npm issued UUID tokens until 2021)",
    ("trufflehog", "&sig=WSdF9YeZhvrbs%2B%2B1f8ZdDBzEe7fBJ%2BenuaXQ%2BJ9WOw0%3D"):
        "a SAS token with a signature (the case tests an invalid permission field, not the signature)",
    ("trufflehog", "&sig=c%2BUXo%2FJwf%2FGHomqYaw6tyRykKMaAnyikkf8nS7btD3DYg%3D"):
        "a SAS token with a signature (the case tests an invalid IP field, not the signature)",
    ("detect-secrets", "bot110201543:AAHdqTcvCH1vGWJxfSe1ofSAs0K5PALDsaw"):
        "the Telegram token of detect-secrets' own positive case, inside the bot<token> URL form",
    ("detect-secrets", "eyJhbasdGciOiJIUaddasdasfsasdasdzI1NiIasdsInR5cCI6IkpXVCasdJasd9."):
        "a JWT-shaped token; the peers disagree (gitleaks' positives include JWTs whose header is no JSON)",
    ("detect-secrets", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaW"):
        "a JWT-shaped token; the peers disagree (gitleaks' positives include JWTs whose header is no JSON)",
}
# Name-keyed cases whose value is random enough for the rule above but no credential all the same: false alarms.
NO_CREDENTIAL_ALL_THE_SAME = {
    ("trufflehog", "AccountKey=storageaccountkeybase64encoded"): "a placeholder spelled in words",
    ("trufflehog", "AZURE_BLOB_SAS_TOKEN=st=2025-03-04T07:24:52Z&se=2025-04-04T15:24:52Z&spr=https&sv=2022-11-02"
                   "&sr=c\n"):
        "a SAS token's public fields without its signature",
    ("gitleaks", 'token:"clm18566:AgencyIdentificationCodeContentType"'): "a type name, not a token",
}
NAME_KEYED_MIN_LENGTH, NAME_KEYED_MIN_ENTROPY = 12, 3.0


def mask(text: str) -> tuple[str, list[Finding], bytes]:
    data = text.encode("utf-8", "surrogatepass")
    findings: list[Finding] = []
    masker = ByteMasker(on_finding=findings.append)
    out = masker.feed(data) + masker.flush()
    return out.decode("utf-8", "surrogatepass"), findings, data


def secret_part(secret: str) -> str:
    """The secret inside a peer's finding: a SAS token's signature (its sv=, se=, sp= … fields are public), a
    connection string's Secret= / AccountKey= value (not its Endpoint=)."""
    for pattern in (_SIGNATURE, _KEY_FIELD):
        found = pattern.search(secret)
        if found:
            return found.group(1)
    return secret


_SIGNATURE = re.compile(r"(?:^|[?&])sig=([^&\s]+)")
_KEY_FIELD = re.compile(r"(?:^|;)(?:Secret|AccountKey|SharedAccessKey)=([^;\s]+)")


def caught(case: Case, masked: str) -> bool:
    """Whether the credential of a true positive is gone from the masked text (a public part before the first
    "=" or ":" among its first 20 characters may stay: the user in user:password, a Telegram bot's id, the
    cookie name in _gitlab_session=…)."""
    if masked == case.text:
        return False
    secret = case.secret
    if not secret:
        return True
    secret = secret_part(secret)
    cut = max(secret.rfind("=", 0, 20), secret.rfind(":", 0, 20))
    if 0 < cut < len(secret) - WINDOW:
        secret = secret[cut + 1:]
    if len(secret) <= WINDOW:
        return secret not in masked
    return not any(secret[i:i + WINDOW] in masked for i in range(len(secret) - WINDOW + 1))


def quoting_rule(case: Case) -> bool:
    note = case.note.lower()
    return case.kind == "fp" and case.source == "detect-secrets" and any(q in note for q in QUOTING_RULES)


def _entropy(data: bytes) -> float:
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values()) if n else 0.0


def set_apart(case: Case, findings: list[Finding], data: bytes) -> str:
    """Why an altered negative case holds a credential after all ("" when it does not: a false alarm)."""
    if quoting_rule(case):
        return "quoting"
    for (source, piece), why in HOLDS_A_CREDENTIAL.items():
        if case.source == source and piece in case.text:
            return "listed: " + why
    if any(case.source == source and piece in case.text for source, piece in NO_CREDENTIAL_ALL_THE_SAME):
        return ""
    if findings and all(NAME_KEYED_RULES.fullmatch(f.rule) and f.length >= NAME_KEYED_MIN_LENGTH
                        and _entropy(data[f.offset:f.offset + f.length]) >= NAME_KEYED_MIN_ENTROPY
                        for f in findings):
        return "name-keyed"
    return ""


COLUMNS = ("tps", "caught", "fps", "altered", "apart", "alarms")


def score(cases: list[Case]) -> tuple[dict[tuple[str, str], Counter], list[tuple[str, Case, str]]]:
    """Counts per (family, source), and the cases worth showing: ("miss" | "alarm" | "apart: why", case, output)."""
    table: dict[tuple[str, str], Counter] = defaultdict(Counter)
    shown: list[tuple[str, Case, str]] = []
    for case in cases:
        masked, findings, data = mask(case.text)
        row = table[(case.family, case.source)]
        if case.kind == "tp":
            row["tps"] += 1
            if caught(case, masked):
                row["caught"] += 1
            else:
                shown.append(("miss", case, masked))
            continue
        row["fps"] += 1
        if masked == case.text:
            continue
        row["altered"] += 1
        why = set_apart(case, findings, data)
        if why:
            row["apart"] += 1
            shown.append((f"apart ({why})", case, masked))
        else:
            row["alarms"] += 1
            shown.append(("alarm", case, masked))
    return table, shown


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:6.1f}%" if whole else "     -"


def _line(label: str, row: Counter, flags: bool = False) -> str:
    negatives = row["fps"] - row["apart"]
    text = (f"{label:<30} {row['tps']:>5} {_pct(row['caught'], row['tps']):>7} {row['fps']:>5} {row['altered']:>7} "
            f"{_pct(row['altered'], row['fps']):>7} {row['apart']:>5} {row['alarms']:>6} "
            f"{_pct(row['alarms'], negatives):>10}")
    if flags:
        text += ("" if not row["tps"] or row["caught"] >= 0.95 * row["tps"] else " RECALL<95%") + (
            "" if not negatives or row["alarms"] <= 0.05 * negatives else " ALARMS>5%")
    return text


def report(table: dict[tuple[str, str], Counter]) -> None:
    header = (f"{'':<30} {'tps':>5} {'recall':>7} {'fps':>5} {'altered':>7} {'(raw)':>7} {'apart':>5} {'alarms':>6} "
              f"{'alarm rate':>10}")
    print(header.replace(" " * 30, f"{'family / source':<30}", 1))
    for (family, source), row in sorted(table.items()):
        print(_line(f"{family} / {source}", row))
    by_family: dict[str, Counter] = defaultdict(Counter)
    for (family, _), row in table.items():
        by_family[family].update(row)
    print("\n" + header.replace(" " * 30, f"{'family (all sources)':<30}", 1)
          + "   targets: recall >= 95%, alarm rate <= 5%")
    issue, everything = Counter(), Counter()
    for family, row in sorted(by_family.items()):
        print(_line(family + (" (beyond the issue)" if family in BEYOND_THE_ISSUE else ""), row, flags=True))
        everything.update(row)
        if family not in BEYOND_THE_ISSUE:
            issue.update(row)
    print(_line("issue's families", issue, flags=True))
    print(_line("all", everything, flags=True))
    print("\nalarm rate = false alarms / (negative cases - those set apart as holding a credential); "
          "'(raw)' = altered / all negative cases")


def show(shown: list[tuple[str, Case, str]], limit: int) -> None:
    count: Counter = Counter()
    for what, case, masked in shown:
        key = (what.split(" ")[0], case.family)
        if count[key] >= limit:
            continue
        count[key] += 1
        print(f"--- {what}: {case.kind} {case.family} {case.source} {case.rule} ({case.file}) {case.note[:80]}")
        print("    " + repr(case.text[:300]))
        print(">>> " + repr(masked[:300]))


def _commit(repo: str) -> str:
    git_dir = ["--git-dir", repo] if not (Path(repo) / ".git").exists() else ["-C", repo]
    result = subprocess.run(["git", *git_dir, "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip()[:12] or "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gitleaks", help="a gitleaks checkout (git directory)")
    parser.add_argument("--detect-secrets", help="a detect-secrets checkout")
    parser.add_argument("--trufflehog", help="a trufflehog checkout")
    parser.add_argument("--show", type=int, default=0,
                        help="print up to N misses, alarms and set-apart cases per family")
    args = parser.parse_args()
    if not (args.gitleaks or args.detect_secrets or args.trufflehog):
        parser.error("give at least one peer checkout")
    os.environ.setdefault("CODEX_MASK_ENGINE", "auto")
    problems: list[Problem] = []
    cases = all_cases(args.gitleaks, args.detect_secrets, args.trufflehog, problems=problems)
    for problem in problems:  # constructs of the peers' sources that could not be read: their cases are missing
        print(f"skipped: {problem}")
    peers = {"gitleaks": args.gitleaks, "detect-secrets": args.detect_secrets, "trufflehog": args.trufflehog}
    print(f"{len(cases)} cases from " + ", ".join(f"{name} {_commit(path)}" for name, path in peers.items() if path))
    table, shown = score(cases)
    report(table)
    if args.show:
        show(shown, args.show)


if __name__ == "__main__":
    main()
