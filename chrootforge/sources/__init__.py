"""Gentoo sources: discover, download, verify (OpenPGP + digests), extract safely, cache.

Public API (import the submodules; this package imports nothing heavy):

    from chrootforge.sources.fetch import fetch_stage3, fetch_snapshot, use_local_stage, use_local_snapshot
    from chrootforge.sources.fetched import FetchedFile
    from chrootforge.sources.extract import extract, ExtractResult
    from chrootforge.sources.stage_cache import pristine_root, fresh_builder, remove_builder

See docs/sources.md for the formats, the trust policy and the cache layout.
"""
