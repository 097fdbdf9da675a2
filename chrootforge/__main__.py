from chrootforge.cli import entry

entry()
