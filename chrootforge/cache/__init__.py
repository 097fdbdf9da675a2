"""The user cache as a whole: what kinds it holds (`kinds`), their sizes and pruning (`prune`).

The hold protocol that keeps prune away from what running builds use is `chrootforge.holds`.
"""
