"""The built-in dataset plugins, imported as ``harness_datasets`` (pyproject.toml's ``[tool.setuptools.package-dir]``).

The folder is named ``datasets`` as the project's design fixes it, but ``datasets`` is also a popular PyPI package
(Hugging Face's), which a user's environment may hold, so it installs under another name. Each public module here
is one plugin (``harness.plugins`` imports every module whose name does not start with ``_``); ``_tiling`` holds
what the raster datasets share. Plugins here import only ``harness``'s public API, never each other.
"""
