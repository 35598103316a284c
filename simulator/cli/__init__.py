"""Layer 8, the command line: ``main`` parses ``redysim`` and dispatches to one module
per command. Nothing below this layer imports it."""
