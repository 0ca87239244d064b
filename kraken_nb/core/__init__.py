"""The I/O-free core: protocol parsing, order books and frame buffers.

Nothing here touches sockets, threads, clocks or widgets; every object is fed
text or dicts and unit-tested that way.
"""
