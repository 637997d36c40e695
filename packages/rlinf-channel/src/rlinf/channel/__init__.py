"""rlinf.channel: Named, keyed, weighted FIFO queues between Ray processes, with back-pressure, timeouts and close; payloads travel through Ray's object store."""

__all__: list[str] = []
