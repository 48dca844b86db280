"""The model card lives in searchcore.build.card (the app's own first-start training writes it too); re-exported
here."""

from searchcore.build.card import METRIC_NAMES, metrics_table, plot_history, write_card, write_kept_card

__all__ = ["METRIC_NAMES", "metrics_table", "plot_history", "write_card", "write_kept_card"]
