"""What every call shares across rules: the call-events service (events.py) and its consumers
(the etiquette log, metrics, the live stream, the step log line)."""
