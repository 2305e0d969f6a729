from glassbox.cli import entry

entry()
