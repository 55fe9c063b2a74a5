"""Everything codex persists: checkpoints, their sidecar metadata, latest.json and resume state.

Submodules, one concern each:
  layout     file names, schema version, reading and verifying what is on disk
  store      atomic writes of checkpoints and latest.json, retention
  resume     training state (optimizer, scheduler, RNG, data position) save/restore
  inference  loading a checkpoint (or a plain model) for generation: serve, ckpt load
  export     writing a standalone Hugging Face model directory
"""
