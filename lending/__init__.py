"""The business: pure rules (money, terms, schedules, allocation, delinquency, states,
settlement, assessment, audit hashing, validation) that import nothing of ours but each other,
and ``services/``, which apply them through ``db``'s repositories.
"""
