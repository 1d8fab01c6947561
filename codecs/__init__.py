"""The built-in codec plugins, imported as ``harness_codecs`` (pyproject.toml's ``[tool.setuptools.package-dir]``).

The folder is named ``codecs`` as the project's design fixes it, but a package of that name would shadow the
standard library's ``codecs`` module, which Python itself imports at start-up, so it installs under another
name. Each public module here is one plugin (``harness.plugins`` imports every module whose name does not start
with ``_``); ``_autoencoder`` holds the learned codecs' parts (``docs/architecture.md``, "Inside the learned
codecs"). Plugins here import only ``harness``'s public API, never each other (tests/test_architecture.py).
"""
