"""The ``answerdesk`` command line: one module per command group."""
