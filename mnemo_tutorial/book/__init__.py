"""What the chapters draw: :mod:`.viz` (figures) and :mod:`.widgets` (interactive explorers)."""

__all__: list[str] = []
