"""Subcommands of ``responses-conformance`` beyond ``run``, one module each.

Each module has ``register(subparsers) -> {command name: handler(args, console) -> exit code}``,
appended to ``_EXTRA_COMMANDS`` in :mod:`conformance.cli`.
"""
