"""Layer labels of the lens tables, importable without torch (the verdict and figure jobs read the tables only)."""

FINAL = "final"  # the row of the model's own output distribution, after every block and the final norm
