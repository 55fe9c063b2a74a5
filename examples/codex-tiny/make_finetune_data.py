"""Generate codex's bundled fine-tuning dataset: docstring -> Python function body.

Each record is a prompt (a ``def`` line and its docstring) and a completion (the body).
Everything is produced from the templates below with a seeded RNG, so the dataset is
reproducible and free to redistribute (same licence as codex). The eval split holds
prompts that never occur in the training split.

    python examples/codex-tiny/make_finetune_data.py --out codex_cli/assets/data
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SEED = 1234
WORDS = ["data", "log", "user", "test", "tmp", "http", "json", "key", "name", "file", "path", "id", "config", "main"]
CHARS = ["a", "e", "x", ",", ";", "/", "-", "_", " ", "."]
NUM, TEXT, ITEMS, MAP = ("x", "value", "number", "n"), ("text", "s", "line"), ("items", "values", "numbers"), (
    "mapping", "table", "counts")

# (argument names, function names, docstrings, body).
# {a} is the argument, {n} {m} numbers, {w} {v} words, {c} {d} characters.
TEMPLATES = [
    (NUM, ["add_{n}", "plus_{n}"], ["Return {a} plus {n}.", "Add {n} to {a}."], "return {a} + {n}"),
    (NUM, ["times_{n}", "scale_by_{n}"], ["Return {a} multiplied by {n}.", "Multiply {a} by {n}."], "return {a} * {n}"),
    (NUM, ["minus_{n}", "decrease_by_{n}"], ["Return {a} minus {n}.", "Subtract {n} from {a}."], "return {a} - {n}"),
    (NUM, ["is_multiple_of_{n}", "divisible_by_{n}"], ["Return True if {a} is divisible by {n}."],
     "return {a} % {n} == 0"),
    (NUM, ["clamp_{n}_{m}", "limit"], ["Clamp {a} to the range [{n}, {m}]."], "return max({n}, min({m}, {a}))"),
    (NUM, ["power_{n}", "raise_to_{n}"], ["Return {a} raised to the power {n}."], "return {a} ** {n}"),
    (NUM, ["is_between", "in_range_{n}"], ["Return True if {a} lies between {n} and {m}, inclusive."],
     "return {n} <= {a} <= {m}"),
    (ITEMS, ["sum_of_squares", "square_sum"], ["Return the sum of the squares of {a}."],
     "return sum(v * v for v in {a})"),
    (ITEMS, ["count_above_{n}", "num_greater"], ["Count the elements of {a} greater than {n}."],
     "return sum(1 for v in {a} if v > {n})"),
    (ITEMS, ["evens", "keep_even"], ["Return the even numbers in {a}.", "Keep only the even elements of {a}."],
     "return [v for v in {a} if v % 2 == 0]"),
    (ITEMS, ["scale_all", "multiply_each"], ["Return every element of {a} multiplied by {n}."],
     "return [v * {n} for v in {a}]"),
    (ITEMS, ["first_or_default", "head"], ["Return the first element of {a}, or {n} if it is empty."],
     "return {a}[0] if {a} else {n}"),
    (ITEMS, ["last_{n}", "tail"], ["Return the last {n} elements of {a}."], "return {a}[-{n}:]"),
    (ITEMS, ["mean", "average"], ["Return the mean of {a}, or 0.0 if it is empty."],
     "return sum({a}) / len({a}) if {a} else 0.0"),
    (ITEMS, ["product", "multiply_all"], ["Return the product of the numbers in {a}."],
     "result = 1\n    for v in {a}:\n        result *= v\n    return result"),
    (ITEMS, ["largest", "maximum"], ["Return the largest element of {a}, or None if it is empty."],
     "if not {a}:\n        return None\n    return max({a})"),
    (ITEMS, ["dedupe", "unique"], ["Return the elements of {a} without duplicates, keeping their order."],
     "seen = set()\n    result = []\n    for v in {a}:\n        if v not in seen:\n            seen.add(v)\n"
     "            result.append(v)\n    return result"),
    (TEXT, ["join_with", "glue"], ["Join the words of {a} with '{c}'."], "return '{c}'.join({a}.split())"),
    (TEXT, ["shout", "loud"], ["Return {a} in upper case."], "return {a}.upper()"),
    (TEXT, ["whisper", "quiet"], ["Return {a} in lower case."], "return {a}.lower()"),
    (TEXT, ["starts_with_{w}", "has_{w}_prefix"], ["Return True if {a} starts with '{w}'."],
     "return {a}.startswith('{w}')"),
    (TEXT, ["ends_with_{w}", "has_{w}_suffix"], ["Return True if {a} ends with '{w}'."],
     "return {a}.endswith('{w}')"),
    (TEXT, ["count_char", "occurrences"], ["Count how many times '{c}' occurs in {a}."], "return {a}.count('{c}')"),
    (TEXT, ["replace_char", "swap_chars"], ["Replace every '{c}' in {a} with '{d}'."],
     "return {a}.replace('{c}', '{d}')"),
    (TEXT, ["strip_{w}", "remove_prefix"], ["Remove the prefix '{w}' from {a} if it is there."],
     "if {a}.startswith('{w}'):\n        return {a}[len('{w}'):]\n    return {a}"),
    (TEXT, ["repeat_{n}", "echo"], ["Return {a} repeated {n} times."], "return {a} * {n}"),
    (TEXT, ["reverse", "backwards"], ["Return {a} reversed."], "return {a}[::-1]"),
    (TEXT, ["word_count", "count_words"], ["Return the number of words in {a}."], "return len({a}.split())"),
    (TEXT, ["split_on", "fields"], ["Split {a} on '{c}' and strip each part."],
     "return [part.strip() for part in {a}.split('{c}')]"),
    (TEXT, ["tag_{w}", "wrap_{w}"], ["Wrap {a} in a <{w}> tag."], "return '<{w}>' + {a} + '</{w}>'"),
    (MAP, ["get_{w}", "lookup_{w}"], ["Return the value for '{w}' in {a}, or {n} if it is missing."],
     "return {a}.get('{w}', {n})"),
    (MAP, ["invert", "swap_keys"], ["Swap the keys and values of {a}."], "return {{v: k for k, v in {a}.items()}}"),
    (MAP, ["sorted_keys", "keys_in_order"], ["Return the keys of {a} in sorted order."], "return sorted({a})"),
    (MAP, ["total", "sum_values"], ["Return the sum of the values of {a}."], "return sum({a}.values())"),
    (MAP, ["has_{w}", "contains_{w}"], ["Return True if {a} has the key '{w}'."], "return '{w}' in {a}"),
    (MAP, ["bump_{w}", "increment_{w}"], ["Add {n} to the count for '{w}' in {a} and return {a}."],
     "{a}['{w}'] = {a}.get('{w}', 0) + {n}\n    return {a}"),
]


def _record(rng: random.Random) -> dict[str, str]:
    args, names, docs, body = rng.choice(TEMPLATES)
    n = rng.randint(2, 9)
    c, d = rng.sample(CHARS, 2)
    w, v = rng.sample(WORDS, 2)
    values = {"a": rng.choice(args), "n": n, "m": n + rng.randint(1, 20), "c": c, "d": d, "w": w, "v": v}
    name = rng.choice(names).format(**values)
    doc = rng.choice(docs).format(**values)
    prompt = f"def {name}({values['a']}):\n    \"\"\"{doc}\"\"\"\n"
    return {"prompt": prompt, "completion": "    " + body.format(**values) + "\n"}


def generate(n_train: int, n_eval: int, seed: int = SEED) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Distinct train and eval records; no eval prompt occurs in train."""
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: list[list[dict[str, str]]] = [[], []]
    for split, size in ((0, n_train), (1, n_eval)):
        while len(splits[split]) < size:
            record = _record(rng)
            if record["prompt"] not in seen:
                seen.add(record["prompt"])
                splits[split].append(record)
    return splits[0], splits[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("codex_cli/assets/data"))
    parser.add_argument("--train", type=int, default=800)
    parser.add_argument("--eval", type=int, default=100)
    args = parser.parse_args()
    train, evaluation = generate(args.train, args.eval)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, records in (("train.jsonl", train), ("eval.jsonl", evaluation)):
        lines = [json.dumps(r, ensure_ascii=False) for r in records]
        (args.out / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(train)} train and {len(evaluation)} eval records written to {args.out}")


if __name__ == "__main__":
    main()
