"""The compliance report per operator per day (etiquette log -> figures, a score)."""
