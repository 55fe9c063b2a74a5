"""The training loop of ``codex train``.

Modules, one concern each:
  loop      train(): set up a run, then per epoch: steps, evaluation, checkpoint
  run       the state of one run, fresh start or resume, checkpoint calls
  step      the loss arithmetic: one optimizer step over an accumulation window, evaluation
  batches   deterministic per-epoch order and accumulation windows
  schedule  step counts and the learning rate at each step
  progress  the rich progress bar (or nothing with --quiet)
  signals   Ctrl-C / SIGTERM: stop at the next step boundary and checkpoint
"""

from codex_cli.training.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
