"""Push metrics stage: a monitoring run's figures, as Prometheus gauges, to a Pushgateway."""
