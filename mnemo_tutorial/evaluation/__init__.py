"""How forgetting is measured: :mod:`.metrics` (E_F, A_R, membership inference),
:mod:`.audits` (probes, relearning) and :mod:`.bench` (every method on one model)."""

__all__: list[str] = []
