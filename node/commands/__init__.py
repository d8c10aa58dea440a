"""Sub-commands of the ``waystation`` CLI; every public module here defines ``register()``."""
