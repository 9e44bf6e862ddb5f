"""What the service reports about itself: its Prometheus series and the drift of its traffic."""
