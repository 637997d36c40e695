"""rlinf.core: The rlinf runtime: Cluster, Worker, WorkerGroup, tensor send/recv between workers, config loading, metrics, checkpoints, registries."""

__all__: list[str] = []
