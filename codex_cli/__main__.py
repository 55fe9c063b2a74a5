"""``python -m codex_cli`` behaves exactly like the ``codex`` command."""

from codex_cli.cli import main

if __name__ == "__main__":
    main()
