"""On-disk cache of tokenized data: one safetensors file per (file bytes, tokenizer, settings).

The key is the SHA256 of the file's bytes, the tokenizer's identity and every setting that
changes the tokens, so a stale entry is never read. Entries are written atomically
(temp file + os.replace) and hold no pickle: flat int32 arrays plus a JSON header.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional

from codex_cli.data.encode import Encoded, Example

CACHE_VERSION = "1"  # bump when encoding changes meaning, so old entries are ignored
CACHE_ENV = "CODEX_CACHE_DIR"


def cache_dir(configured: Optional[str]) -> Path:
    """data.cache_dir, else $CODEX_CACHE_DIR/data, else ~/.cache/codex/data."""
    if configured:
        return Path(configured).expanduser()
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "codex") / "data"


def tokenizer_identity(tokenizer: Any) -> str:
    """SHA256 of what decides the tokens: the tokenizer.json (or vocab) and its special tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("truncation", None)  # call-time settings, not part of the tokenizer's identity
        spec.pop("padding", None)
        body = json.dumps(spec, sort_keys=True)
    else:
        body = json.dumps(sorted(tokenizer.get_vocab().items()))
    special = [type(tokenizer).__name__, tokenizer.eos_token_id, sorted(tokenizer.all_special_tokens)]
    return hashlib.sha256((body + json.dumps(special)).encode("utf-8")).hexdigest()


def cache_key(raw: bytes, settings: dict[str, Any]) -> str:
    """SHA256 over the file bytes and the settings (tokenizer identity, max_length, format, fields, masking)."""
    digest = hashlib.sha256()
    digest.update(f"codex-data-cache-v{CACHE_VERSION}\0".encode())
    digest.update(hashlib.sha256(raw).digest())
    digest.update(json.dumps(settings, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def load(path: Path) -> Optional[Encoded]:
    """The cached examples at ``path``, or None when there is no entry."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
            ids, labels, lengths = (handle.get_tensor(k) for k in ("input_ids", "labels", "lengths"))
    except (SafetensorError, OSError, KeyError) as e:
        # e.g. a partial copy: tokenizing again overwrites it, and the user is told why the run is slower
        logging.getLogger("codex.data").warning(
            "codex: note: data cache entry '%s' is unreadable (%s); tokenizing again", path, type(e).__name__)
        return None
    if meta.get("version") != CACHE_VERSION:
        return None
    encoded = Encoded(masked_secrets=int(meta["masked_secrets"]), truncated=int(meta["truncated"]),
                      skipped=int(meta["skipped"]))
    ids_list, labels_list, start = ids.tolist(), labels.tolist(), 0
    for length in lengths.tolist():
        encoded.examples.append(Example(ids_list[start:start + length], labels_list[start:start + length]))
        start += length
    return encoded


def save(path: Path, encoded: Encoded) -> None:
    """Write ``encoded`` to ``path`` atomically."""
    import numpy as np
    from safetensors.numpy import save_file

    tensors = {
        "input_ids": np.array([t for e in encoded.examples for t in e.input_ids], dtype=np.int32),
        "labels": np.array([t for e in encoded.examples for t in e.labels], dtype=np.int32),
        "lengths": np.array([len(e.input_ids) for e in encoded.examples], dtype=np.int64),
    }
    meta = {"version": CACHE_VERSION, "masked_secrets": str(encoded.masked_secrets),
            "truncated": str(encoded.truncated), "skipped": str(encoded.skipped)}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
