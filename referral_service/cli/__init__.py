"""``referral-service``, the command line: server commands (``servers``) and client commands over the HTTP API
(``submit``, ``listing``, ``referral_commands``, ``reports``), assembled by ``main``."""

from referral_service.cli.main import main

__all__ = ["main"]
