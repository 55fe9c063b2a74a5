"""A small Go evaluator for the Go that peer scanners' rule and test files are written in.

It runs the subset those files use: string, number and rune literals, ``+`` and comparisons, composite
literals (slices, maps, structs), ``append``, ``fmt.Sprintf``, ``var``/``const``/``:=``, ``if`` and
``for … range``, package-level functions, a few of ``strings``, ``base64`` and ``regexp``. Go's map
iteration is random; maps are iterated sorted by key so that a run is deterministic. A construct outside
the subset raises :class:`GoError`; where a list element, a map entry or (in a tolerant block) a statement
fails, the interpreter records a :class:`~peers.cases.Problem` and goes on.

``secrets.NewSecret(regex)`` is answered by :class:`RegexSampler` (gitleaks' reggen, emulated), and Go
regexes are compiled with :func:`compile_go_regex`.

Modules: ``tokens`` (tokenizer), ``values`` (runtime values, scopes), ``source`` (files, packages,
functions), ``expr`` (expressions), ``interp`` (statements, calls, library), ``regex`` (Go regex →
Python), ``sample`` (the regex sampler), ``errors``.
"""

from peers.golang.errors import GoError
from peers.golang.interp import Interp
from peers.golang.regex import compile_go_regex, go_regex_to_py
from peers.golang.sample import RegexSampler
from peers.golang.source import GoFile, GoFunc, GoPackage
from peers.golang.tokens import split_top
from peers.golang.values import Failed, GStr, RuleResult, Scope, StructVal, text_of

__all__ = [
    "Failed", "GStr", "GoError", "GoFile", "GoFunc", "GoPackage", "Interp", "RegexSampler", "RuleResult", "Scope",
    "StructVal", "compile_go_regex", "go_regex_to_py", "split_top", "text_of",
]
