"""codex: fine-tune, checkpoint, serve and guard small causal language models, offline."""

__version__ = "0.1.0"
