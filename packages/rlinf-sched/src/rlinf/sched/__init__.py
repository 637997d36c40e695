"""rlinf.sched: Devices and placement for Ray systems: placement specs, collocated/disaggregated/hybrid classification, placement groups, schedulers."""

__all__: list[str] = []
