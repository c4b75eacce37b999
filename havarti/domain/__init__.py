"""Domain logic: what a project page holds, what an upload must be, the mirror policy.

Nothing here knows of HTTP or Flask.
"""
