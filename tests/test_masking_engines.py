"""Property tests: both prefilter engines and any chunking give exactly one full regex scan's output."""

from __future__ import annotations

import random
import re
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from regex_sample import sample

from codex_cli.masking.engine import engine
from codex_cli.masking.prefilter import hyperscan_finder, python_finder
from codex_cli.masking.rules import ALLOW_MARKER, ALLOW_REACH, providers
from codex_cli.masking.rules.base import entropy
from codex_cli.masking.rules.values import not_a_value
from codex_cli.masking.stream import ByteMasker

ENGINE = engine()
COMBINED = re.compile("|".join(ENGINE.alternatives).encode())
EVERY_RULE = (1 << len(ENGINE.rules)) - 1
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "_-"
SECRET_CHARS = "BDEFHIJKLMOPQRSVWXYZ0123456789"


def _s(chars: str, n: int, m: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet=chars, min_size=n, max_size=m or n)


def _pem(kind: str) -> st.SearchStrategy[str]:
    lines = st.lists(_s(ALNUM + "+/", 1, 64), min_size=1, max_size=4)
    begin, end = f"-----BEGIN {kind}PRIVATE KEY-----\n", f"\n-----END {kind}PRIVATE KEY-----"
    return lines.map(lambda ls: begin + "\n".join(ls) + end)


def _secret_like(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and not not_a_value(value.encode())


_rng = random.Random(1234)
PROVIDER_SAMPLES = [sample(r.regex, _rng) for r in providers.RULES  # (a random ZXlK… does not decode to a JWT)
                    if r.hs and all(p.regex.startswith(b"[^") for p in r.hs) and r.id != "jwt-base64" for _ in range(2)]

# (context, secret): the context stays, the secret must be masked (a closing quote after it stays too).
SECRETS = st.one_of(
    st.tuples(_s(ALNUM, 20), _s(ALNUM, 20)).map(lambda t: ("", f"sk-{t[0]}T3BlbkFJ{t[1]}")),
    st.tuples(st.sampled_from(["proj", "svcacct", "admin"]), _s(B64URL, 58, 74), _s(B64URL, 58, 74)).map(
        lambda t: ("", f"sk-{t[0]}-{t[1]}T3BlbkFJ{t[2]}")),
    st.tuples(st.sampled_from(["AKIA", "ASIA", "ABIA", "ACCA", "A3TX"]), _s("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 15, 19),
              st.sampled_from(SECRET_CHARS)).map(lambda t: ("", t[0] + t[1] + t[2])),
    st.tuples(st.sampled_from(["aws_secret_access_key = ", "AWS_SECRET_ACCESS_KEY=", '"SecretAccessKey": "']),
              _s(ALNUM + "/+", 40)).map(lambda t: t),
    _s(B64URL, 35).map(lambda b: ("", "AIza" + b)),
    _s(ALNUM + "+/", 16, 200).map(lambda b: ('"private_key": "', "-----BEGIN PRIVATE KEY-----\\n" + b + '"')),
    st.tuples(st.sampled_from("pousr"), _s(ALNUM, 36)).map(lambda t: ("", f"gh{t[0]}_{t[1]}")),
    st.tuples(_s(ALNUM, 22), _s(ALNUM, 59)).map(lambda t: ("", f"github_pat_{t[0]}_{t[1]}")),
    st.tuples(st.sampled_from(["xoxb", "xoxa", "xoxr", "xoxs", "xoxe", "xoxc", "xoxd", "xoxe.xoxp", "xapp"]),
              _s(string.digits, 10, 13), _s(ALNUM + "-", 1, 30), _s(ALNUM, 4, 8)).map(
        lambda t: ("", f"{t[0]}-{t[1]}-{t[2]}{t[3]}")),
    st.tuples(_s(string.digits, 6, 13), _s(ALNUM, 8, 34)).map(lambda t: ("", f"xoxp-{t[0]}-{t[0]}-{t[0]}-{t[1]}")),
    st.tuples(_s(ALNUM, 8, 10), _s(ALNUM, 24)).map(lambda t: ("", f"https://hooks.slack.com/services/T{t[0]}/B{t[0]}/{t[1]}")),
    st.tuples(_s(B64URL, 10, 40), _s(B64URL, 10, 80), _s(B64URL, 0, 43)).map(
        lambda t: ("", f"eyJ{t[0]}.eyJ{t[1]}.{t[2]}")),
    st.sampled_from(["", "RSA ", "EC ", "OPENSSH ", "ENCRYPTED "]).flatmap(_pem).map(lambda p: ("", p)),
    _s(ALNUM + "+/", 1, 64).map(lambda b: ("", f"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----\n{b}\n"
                                             "---- END SSH2 ENCRYPTED PRIVATE KEY ----")),
    _s(ALNUM + "+/", 1, 64).map(lambda b: ("", f"PuTTY-User-Key-File-3: ssh-ed25519\nPrivate-Lines: 1\n{b}\n"
                                             f"Private-MAC: {'ab12' * 8}")),
    # provider tokens, sampled from each rule's own pattern
    st.sampled_from(PROVIDER_SAMPLES).map(lambda t: ("", t)),
    # name-keyed values in the common formats (a value runs to the end of its line, so one ends it)
    st.tuples(st.sampled_from([("DB_PASSWORD=", ""), ("export API_TOKEN=", ""), ("client_secret: ", ""),
                               ('"password": "', '"'), ("api_key = '", "'"), ("--password=", ""), ("--token ", ""),
                               ('secret_key := "', '"'), ("<password>", "</password>")]),
              _s(ALNUM + "!#%+", 6, 24).filter(_secret_like)).map(lambda t: (t[0][0], t[1] + t[0][1] + "\n")),
    # structured: URI passwords, headers, curl -u
    st.tuples(st.sampled_from(["postgres", "mysql", "redis", "amqps", "https", "mongodb+srv"]), _s(ALNUM, 1, 10),
              _s(ALNUM + "!$%*", 4, 20).filter(_secret_like)).map(
        lambda t: (f"{t[0]}://{t[1]}:", t[2] + "@db.internal:5432")),
    _s(ALNUM, 20, 40).filter(lambda v: any(c.isdigit() for c in v) and any(c.isalpha() for c in v)).map(
        lambda v: ("Authorization: Bearer ", v)),
)
SEPARATORS = st.sampled_from([" ", "\n", "\t", ", ", ";", "(", ")", "\r\n", "\"\n"])
FILLER = _s(string.ascii_lowercase + string.digits + " \néü", 0, 30)
FRAGMENTS = [
    b"sk-", b"AKIA", b"ASIA", b"ACCA", b"A3T", b"secret", b"SECRET_ACCESS_KEY", b"aws_", b"AIza", b"private_key",
    b'"', b"'", b": ", b" = ", b"=", b"ghp_", b"github_pat_", b"xox", b"xoxb-", b"xoxe.", b"xapp-",
    b"hooks.slack.com/services/", b"https://", b"-----BEGIN", b" RSA PRIVATE KEY-----", b"---- BEGIN", b" ----",
    b"PuTTY-User-Key-File-2: ", b"Private-MAC: ", b"0a1b2c3d4e5f6a7b",
    b"-----END RSA PRIVATE KEY-----",
    b"eyJ", b".", b"\n", b"\r\n", b"\\n", b" ", ALLOW_MARKER, b"A1b2C3d4E5f6G7h8", b"ABCDEFGHIJKLMNOP", b"0123456789",
    b"\xff\xfe", b"\x00", "é".encode(),
    b"password", b"PASSWORD", b"token", b"_token", b"api_key", b"ApiKey", b"key", b"auth", b"cred", b"pwd", b"pass",
    b"secret", b"aws", b"cloudflare", b"discord", b"max_", b"public_", b"_length", b"_id", b"--", b"-u ", b"--user ",
    b":=", b"=>", b"==", b",", b"(", b"<", b">", b"`", b"${", b"}", b"$", b"@", b"://", b":", b"postgres://", b"https://",
    b"Bearer ", b"Authorization: ", b"Basic ", b"hf_", b"glpat-", b"sk-ant-api03-", b"sk_live_", b"npm_", b"SG.",
    b":A", b"Q~", b"8Q~", b"sig=", b"&sig=", b"AccountKey=", b".atlasv1.", b"-us1", b"key-", b"xoxb-",
    b"discord.com/api/webhooks/", b"123456789", b"AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw4", b"null", b"None", b"xxxx",
    b"Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB", b"s3cr3tP4ss", b"export ", b"'", b"\\\"",
]
ANCHOR_SOUP = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), SECRETS.map(lambda s: (s[0] + s[1]).encode()), st.binary(max_size=6)),
    max_size=40).map(b"".join)


def reference_mask(data: bytes, replacement: bytes = b"[SECRET]") -> bytes:
    """One full scan with every rule at every position (no prefilter, no streaming): the behaviour every
    engine must reproduce. At the leftmost position where any rule matches, the first rule whose pattern
    matches and whose check accepts wins; the scan goes on after the bytes it masked."""
    buf = b"\n" + data
    out, pos, last = [], 1, 1
    while (m := COMBINED.search(buf, pos)) is not None:
        c = m.start()
        verdict = ENGINE.verdict(buf, c, m, EVERY_RULE)
        lo = max(0, c - ALLOW_REACH)
        nl = buf.rfind(b"\n", lo, c)
        line_start = nl + 1 if nl >= 0 else lo
        line_end = buf.find(b"\n", c, c + ALLOW_REACH)
        if verdict is None or ALLOW_MARKER in buf[line_start:line_end if line_end >= 0 else c + ALLOW_REACH]:
            pos = c + 1
            continue
        out += [buf[last:verdict.start], replacement]
        last = pos = verdict.end
    out.append(buf[last:])
    return b"".join(out)


def masked_with(data: bytes, finder, cuts: list[int] = (), masker: ByteMasker | None = None) -> bytes:
    masker = masker or ByteMasker(finder=finder)
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    out = [masker.feed(data[a:b]) for a, b in zip(bounds, bounds[1:])]
    return b"".join(out) + masker.flush()


PY = python_finder()
HS_FINDER = hyperscan_finder()


@PROPERTY
@given(ANCHOR_SOUP)
def test_python_engine_equals_a_full_regex_scan(data: bytes) -> None:
    assert masked_with(data, PY) == reference_mask(data)


@PROPERTY
@given(ANCHOR_SOUP, st.lists(st.integers(min_value=0), max_size=8))
def test_hyperscan_engine_equals_python_engine(data: bytes, cuts: list[int]) -> None:
    hs = HS_FINDER or pytest.skip("hyperscan is not installed")
    assert masked_with(data, hs, cuts) == masked_with(data, PY)


@PROPERTY
@given(ANCHOR_SOUP, st.lists(st.integers(min_value=0), max_size=12))
def test_chunking_never_changes_the_output(data: bytes, cuts: list[int]) -> None:
    assert masked_with(data, PY, cuts) == masked_with(data, PY)


@PROPERTY
@given(ANCHOR_SOUP)
def test_one_byte_at_a_time_gives_the_same_output(data: bytes) -> None:
    """As a server streams tokens: the pure-Python finder holds back only what the bytes at the end could still
    become, and must never have let out a byte that the whole input masks."""
    masker = ByteMasker(finder=PY)
    out = b"".join(masker.feed(data[i:i + 1]) for i in range(len(data))) + masker.flush()
    assert out == masked_with(data, PY)


@PROPERTY
@given(st.lists(st.tuples(FILLER, SEPARATORS, SECRETS, SEPARATORS), min_size=1, max_size=6), FILLER,
       st.lists(st.integers(min_value=0), max_size=6))
def test_generated_secrets_never_survive(parts: list, tail: str, cuts: list[int]) -> None:
    # a key, not a placeholder: varied, with no long run of one character
    assume(all(entropy(secret.encode()) >= 3.0 and not re.search(r"(.)\1{7}", secret)
               for _, _, (_, secret), _ in parts))
    text = "".join(f + a + ctx + secret + b for f, a, (ctx, secret), b in parts) + tail
    # each secret once: a filler that spells a secret again (hypothesis reuses drawn values) would stay, rightly
    assume(all(text.count(secret.rstrip('"')) == 1 for _, _, (_, secret), _ in parts))
    data = text.encode()
    masker = ByteMasker(finder=HS_FINDER or PY)
    out = masked_with(data, None, cuts, masker)
    for _, _, (_, secret), _ in parts:
        assert secret.rstrip('"').encode() not in out, secret
    assert out.count(b"[SECRET]") == masker.count == len(parts)


@PROPERTY
@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=6))
def test_input_without_secrets_comes_out_byte_for_byte(data: bytes, cuts: list[int]) -> None:
    if reference_mask(data) == data:
        assert masked_with(data, PY, cuts) == data



@pytest.fixture
def no_hyperscan(monkeypatch: pytest.MonkeyPatch):
    import sys

    from codex_cli.masking import prefilter

    monkeypatch.setitem(sys.modules, "hyperscan", None)  # import hyperscan now raises ImportError
    monkeypatch.setattr(prefilter, "_FINDERS", {})
    monkeypatch.delenv(prefilter.ENGINE_ENV, raising=False)
    return prefilter


def test_a_missing_hyperscan_where_it_belongs_is_said(no_hyperscan, monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(no_hyperscan, "hyperscan_expected", lambda: True)
    assert no_hyperscan.default_finder().name == "python"
    assert [r.getMessage() for r in caplog.records] == [
        "codex: note: hyperscan is not importable here, so masking uses the pure-Python engine "
        "(same output, several times slower); reinstall codex-cli to get it back"]


def test_the_python_engine_is_quiet_where_hyperscan_is_not_installed(
        no_hyperscan, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(no_hyperscan, "hyperscan_expected", lambda: False)
    assert no_hyperscan.default_finder().name == "python"
    assert caplog.records == []


def test_requiring_hyperscan_without_it_is_a_usage_error(no_hyperscan, monkeypatch: pytest.MonkeyPatch) -> None:
    from codex_cli.errors import UsageError

    monkeypatch.setenv(no_hyperscan.ENGINE_ENV, "hyperscan")
    with pytest.raises(UsageError, match="CODEX_MASK_ENGINE=hyperscan but the hyperscan package is not installed"):
        no_hyperscan.default_finder()


def test_the_default_finder_takes_over_past_small_inputs_with_the_same_output() -> None:
    from codex_cli.masking.stream import SMALL_INPUT

    rng = random.Random(7)
    secrets = [s for s in PROVIDER_SAMPLES] + ["DB_PASSWORD=Tr0ub4dor&3x", "postgres://u:pw9Xk2@db:5432/x"]
    filler = b"".join(rng.choice([b"the token is ", b"password_length = 16\n", b"sk-learn ", b"x" * 40 + b"\n"])
                      for _ in range(SMALL_INPUT // 6))
    data = bytearray(filler)
    for i, secret in enumerate(secrets):  # some around the switch point, some after it
        at = SMALL_INPUT - 200 + i * 97 if i % 2 else len(data) // 2 + i * 1013
        data[at:at] = b"\n" + secret.encode() + b"\n"
    data = bytes(data)
    adaptive, python = ByteMasker(), ByteMasker(finder=PY)
    cuts = [SMALL_INPUT - 50, SMALL_INPUT + 7, 100_000]
    assert masked_with(data, None, cuts, adaptive) == masked_with(data, None, [], python)
    assert adaptive._finder.name == (HS_FINDER.name if HS_FINDER else "python")
    assert adaptive.count == python.count >= len(secrets) - 5  # (a few sampled tokens are placeholders, left alone)


def test_every_pattern_is_bounded() -> None:
    """A rule or prefilter pattern with an unbounded repeat would make the stream hold back (and rescan) all
    it has read: quadratic time on chunked input, as an unbounded `sshpass[ \\t]+-p` once did."""
    from codex_cli.masking.engine import engine
    from codex_cli.masking.prefilter import hs_patterns
    from codex_cli.masking.rules import REACH
    from codex_cli.masking.rules.base import max_width

    eng = engine()
    unbounded = [r.id for r in eng.rules if max_width(r.regex) >= 2**31]  # (the engine caps a rule at REACH)
    unbounded += [p.regex.decode("latin-1")[:40] for p, _ in hs_patterns(eng)
                  if p.expand and max_width(p.regex.decode("latin-1")) > REACH]
    assert unbounded == []


def test_the_hyperscan_database_and_reaches_are_cached_and_a_damaged_cache_is_rebuilt(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hyperscan

    from codex_cli.masking.prefilter import hs_expression, hs_patterns

    monkeypatch.setenv("CODEX_CACHE_DIR", str(tmp_path))
    built = hyperscan_finder()
    (db,) = (tmp_path / "mask").glob("hyperscan-*.db")
    reaches = db.with_suffix(".json")
    assert reaches.exists()
    compiles = []
    real_database = hyperscan.Database
    monkeypatch.setattr(hyperscan, "Database", lambda **kw: (compiles.append(1), real_database(**kw))[1])
    loaded = hyperscan_finder()
    assert compiles == [] and loaded.tail == built.tail
    data = b"DB_PASSWORD=Tr0ub4dor&3x\nmodel_token = get_token('x')\n" * 3
    assert sorted(loaded.find(data, 0)) == sorted(built.find(data, 0)) != []
    reaches.write_text("[1, 2")  # damaged: rebuilt, not trusted
    rebuilt = hyperscan_finder()
    assert compiles == [1] and rebuilt.tail == built.tail
    # What Hyperscan compiles: the name-keyed patterns with long repeats unbounded, every other one as written
    loosened = 0
    for p, _ in hs_patterns(ENGINE):
        if p.expand and p.unbounded:
            assert b"{0,48}" not in hs_expression(p) and b"{1,11}" not in hs_expression(p)
            loosened += 1
        else:
            assert hs_expression(p) == p.regex
    assert loosened == 3
