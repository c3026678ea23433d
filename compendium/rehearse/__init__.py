"""Rehearsal of the ``full`` profiles: miniature data in the real on-disk formats, weights of
the real architectures, the paper's notebook run by the normal runner (see :mod:`.core`)."""
