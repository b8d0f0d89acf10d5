"""Parses a /metrics answer (OpenMetrics text, on standard input) with the reference
parser of the Prometheus Python client, which refuses malformed text, and prints every
sample as JSON: {"name{label=value,...}": value}, labels sorted."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

samples = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        samples[f"{s.name}{{{labels}}}"] = s.value
json.dump(samples, sys.stdout)
