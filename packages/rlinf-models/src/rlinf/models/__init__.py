"""rlinf.models: Policies, training and generation backends, weight sync, and the Actor/Rollout/Reward workers of rlinf."""

__all__: list[str] = []
