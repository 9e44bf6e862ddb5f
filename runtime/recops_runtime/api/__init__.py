"""What callers and the service agree on: request and response messages, status-carrying errors."""
