"""Services: apply the pure rules through repositories, inside the caller's transaction; and the
demo data, loaded through them. May import ``db`` and the pure rules, never ``graph``.
"""
