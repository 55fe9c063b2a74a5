"""Every rule masks its real-world formats (sloppy ones included) and leaves look-alikes alone."""

from __future__ import annotations

import random
import string

import pytest

from codex_cli.masking import RULES, StreamMasker, mask_bytes, mask_text, secret_filter_disabled

S = "[SECRET]"
_rng = random.Random(1234)
ALNUM = string.ascii_letters + string.digits


def rand(chars: str, k: int) -> str:
    return "".join(_rng.choices(chars, k=k))


PEM_BODY = "\n".join(rand(ALNUM + "+/", 64) for _ in range(6)) + "\n" + rand(ALNUM, 20) + "=="
JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
       ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c")
# (rule id, text, expected masked text)
POSITIVES = [
    ("openai-api-key", f"key sk-{rand(ALNUM, 20)}T3BlbkFJ{rand(ALNUM, 20)} end", f"key {S} end"),
    ("openai-api-key", f"OPENAI_API_KEY=sk-proj-{rand(ALNUM + '_-', 74)}T3BlbkFJ{rand(ALNUM + '_-', 74)}",
     f"OPENAI_API_KEY={S}"),
    ("openai-api-key", f'"sk-svcacct-{rand(ALNUM, 58)}T3BlbkFJ{rand(ALNUM, 58)}"', f'"{S}"'),
    ("openai-api-key", f"sk-admin-{rand(ALNUM, 58)}T3BlbkFJ{rand(ALNUM, 58)}\n", f"{S}\n"),
    ("openai-api-key", "legacy sk-Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9jKl1nOp3rSt5v", f"legacy {S}"),
    ("aws-access-key-id", "aws key AKIA1234567890EXAMPLE", f"aws key {S}"),
    ("aws-access-key-id", "id=AKIAIOSFODNN7EXAMPLE;", f"id={S};"),
    ("aws-access-key-id", "ASIAY34FZKBOKMUTVV7A ABIAZZ2345ABCDEFGHIJ ACCA7ABCDEFGHIJKLMNO",
     f"{S} {S} {S}"),
    ("aws-access-key-id", "A3TX1234567890ABCDEF", S),
    ("aws-secret-access-key", "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     f"aws_secret_access_key = {S}"),
    ("aws-secret-access-key", 'export AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
     f'export AWS_SECRET_ACCESS_KEY="{S}"'),
    ("aws-secret-access-key", '{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
     f'{{"SecretAccessKey": "{S}"}}'),
    ("aws-secret-access-key", "aws_secret_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCY", f"aws_secret_key: {S}"),
    ("google-api-key", f"https://maps.googleapis.com/x?key=AIzaSy{rand(ALNUM + '_-', 33)}&q=1",
     f"https://maps.googleapis.com/x?key={S}&q=1"),
    ("gcp-service-account-key",
     '  "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n'
     '-----END PRIVATE KEY-----\\n",',
     f'  "private_key": "{S}",'),
    ("github-token", f"token ghp_{rand(ALNUM, 36)}", f"token {S}"),
    ("github-token", f"gho_{rand(ALNUM, 36)} ghu_{rand(ALNUM, 36)} ghs_{rand(ALNUM, 36)} ghr_{rand(ALNUM, 36)}",
     f"{S} {S} {S} {S}"),
    ("github-fine-grained-pat", f"GH_TOKEN=github_pat_{rand(ALNUM, 22)}_{rand(ALNUM, 59)}", f"GH_TOKEN={S}"),
    ("slack-token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", S),
    ("slack-token", "xoxp-1234567890-1234567890-1234567890-abcdef0123 xoxa-2-1234567890-abc", f"{S} {S}"),
    ("slack-token", "xoxr-1234567890-abcdef xoxs-1234567890-abcdef xoxe-1-My0xLTEyMzQ1Ng", f"{S} {S} {S}"),
    ("slack-token", "cookie d=xoxd-AbC123dEf456%2F xoxc-1234567890-1234567890-abcdef", f"cookie d={S}%2F {S}"),
    ("slack-token", "xoxe.xoxp-1-Mi0yLTEyMzQ1Njc4OTAtMTIz xapp-1-A0123456789-1234567890123-abcdef0123",
     f"{S} {S}"),
    ("slack-webhook-url", "POST https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n",
     f"POST {S}\n"),
    ("private-key", f"before\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----\nafter\n",
     f"before\n{S}\nafter\n"),
    ("private-key", f"-----BEGIN OPENSSH PRIVATE KEY-----\r\n{PEM_BODY}\r\n-----END OPENSSH PRIVATE KEY-----",
     S),
    ("private-key", "k = '-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6tF1aY/PuoAoGCCqG"
                    "\\n-----END EC PRIVATE KEY-----'", f"k = '{S}'"),
    ("private-key", f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{PEM_BODY}\n-----END PGP PRIVATE KEY BLOCK-----",
     S),
    ("private-key-unterminated", f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{PEM_BODY}\nThe end.",
     f"{S}\nThe end."),
    ("private-key", f"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\nComment: \"rsa-key\"\n{PEM_BODY}\n"
                    "---- END SSH2 ENCRYPTED PRIVATE KEY ----\n", f"{S}\n"),
    ("putty-private-key", f"PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nPublic-Lines: 2\n{PEM_BODY}\n"
                          f"Private-Lines: 2\n{PEM_BODY}\nPrivate-MAC: {'0a1b2c3d' * 5}\n", f"{S}\n"),
    ("jwt", f"Authorization: Bearer {JWT}\n", f"Authorization: Bearer {S}\n"),
    ("jwt", "t=eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0In0.", f"t={S}"),
]
NEGATIVES = [
    ("openai-api-key", "task-list-item-checkbox-container sk-learn risk-free sk-SK desk-1234567890ABCDEFGHIJ"),
    ("openai-api-key", "sk-lowercase-kebab-case-identifier-name sketch"),
    ("aws-access-key-id", "ASIAN markets, TASK-42, AKIAB, ASIAPACIFICREGION"),
    ("aws-access-key-id", "DNA ACCAGTACGATCGATCGTACGTTAGC ACCACCACCACCACCACCAC"),
    ("aws-secret-access-key", "aws_secret_access_key = ${AWS_SECRET} # AWS_SECRET_ACCESS_KEY=changeme"),
    ("aws-secret-access-key", 'key = os.environ["AWS_SECRET_ACCESS_KEY"]; the secret access key is rotated'),
    ("google-api-key", "AIza AIzaShort"),
    ("gcp-service-account-key",
     '"private_key_id": "0123456789abcdef0123456789abcdef01234567", data["private_key"] = f()'),
    ("github-token", "ghost_protocol gh_pages ghp_short sketch_ghp"),
    ("github-fine-grained-pat", "github_pat_short, set_github_pat_value, github_pat_"),
    ("private-key-unterminated", "-----BEGIN RSA PUBLIC KEY-----\nMIIBCgKCAQEA+xGZ/wcz9ugFpP07Nspo6U17l0YhFiFpxxU4\n"),
    ("private-key", "---- BEGIN SSH2 PUBLIC KEY ----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n---- END SSH2 PUBLIC KEY ----"),
    ("putty-private-key", "PuTTY-User-Key-File-2: ssh-rsa\nPublic-Lines: 1\nAAAAB3NzaC1yc2EAAAADAQAB\n"),
    ("slack-token", "xoxo-gossip xoxb-not-a-token-at-all xox"),
    ("slack-webhook-url", "see https://hooks.slack.com/ for docs"),
    ("private-key",
     "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBa\n-----END CERTIFICATE-----"),
    ("private-key", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9 and eyJ alone, eyJhbGciOiJIUzI1NiJ9.only-two"),
]
ORDINARY = [
    "sha256: " + "".join(random.Random(1).choices("0123456789abcdef", k=64)),
    "commit 3f786850e387550fdab836ed7e6dc881de23001b",
    "id = 550e8400-e29b-41d4-a716-446655440000",
    "def sketch_task(ghost_id): return ask(desk=ghost_id)",
    "\n".join(random.Random(2).choices([rand(ALNUM + "+/", 64) for _ in range(50)], k=40)),  # base64 of a cert
    "Ünïcödé tëxt, emoji 🙂, CJK 秘密 and tabs\tand\r\nCRLF",
]


@pytest.mark.parametrize(("rule", "text", "expected"), POSITIVES,
                         ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(POSITIVES)])
def test_rule_masks_its_formats(rule: str, text: str, expected: str) -> None:
    masked, count = mask_text(text)
    assert masked == expected
    assert count == expected.count(S)


@pytest.mark.parametrize(("rule", "text"), NEGATIVES, ids=[f"{r}-{i}" for i, (r, _) in enumerate(NEGATIVES)])
def test_rule_leaves_look_alikes_alone(rule: str, text: str) -> None:
    assert mask_text(text) == (text, 0)


@pytest.mark.parametrize("text", ORDINARY, ids=["sha256", "sha1", "uuid", "code-words", "base64", "unicode"])
def test_ordinary_text_is_untouched(text: str) -> None:
    assert mask_text(text) == (text, 0)


def test_every_rule_has_positive_and_negative_examples() -> None:
    ids = {r.id for r in RULES}
    assert {r for r, _, _ in POSITIVES} == ids
    assert {r for r, _ in NEGATIVES} == ids


def test_worked_example_exact() -> None:
    assert mask_text("aws key AKIA1234567890EXAMPLE\n") == ("aws key [SECRET]\n", 1)


@pytest.mark.parametrize(("replacement", "typed", "expected"), [
    ("[SECRET]", True, "x [SECRET:github] y"),
    ("***", False, "x *** y"),
    ("<redacted>", True, "x <redacted>:github y"),
    ("", False, "x  y"),
], ids=["typed", "custom", "custom-typed", "empty"])
def test_replacement_and_typed(replacement: str, typed: bool, expected: str) -> None:
    assert mask_text(f"x ghp_{'a1B2' * 9} y", replacement, typed) == (expected, 1)


def test_typed_names_each_family() -> None:
    text = "AKIAIOSFODNN7EXAMPLE " + JWT + " xoxb-1234567890-abcdefghij"
    assert mask_text(text, typed=True)[0] == "[SECRET:aws] [SECRET:jwt] [SECRET:slack]"


def test_allow_marker_leaves_only_its_line_alone() -> None:
    text = "a = 'AKIAIOSFODNN7EXAMPLE'  # codex: allow\nb = 'AKIAIOSFODNN7EXAMPLE'\n"
    assert mask_text(text) == (text.replace("b = 'AKIAIOSFODNN7EXAMPLE'", f"b = '{S}'"), 1)


def test_secret_filter_disabled_turns_everything_off(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "aws key AKIA1234567890EXAMPLE"
    assert not secret_filter_disabled()
    monkeypatch.setenv("DISABLE_SECRET_FILTER", "0")
    assert not secret_filter_disabled() and mask_text(text)[1] == 1
    monkeypatch.setenv("DISABLE_SECRET_FILTER", "1")
    assert secret_filter_disabled()
    assert mask_text(text) == (text, 0)
    assert mask_bytes(text.encode()) == (text.encode(), 0)
    stream = StreamMasker()
    assert stream.feed(text) + stream.flush() == text and stream.count == 0
