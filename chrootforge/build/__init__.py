"""`chrootforge build`: the images of a namespace, parents first, into an OCI layout.

engine.py runs a build (build(), plan(), prepare(), the BuildReport); flags.py is the one shape
of its options; plangraph.py the --plan --json graph; distribution.py, remotecache.py and
publish.py what it shares between machines (--binhost, --remote-cache, --push); platformindex.py
the image indexes of a multi-platform build; cli.py the command.
"""
