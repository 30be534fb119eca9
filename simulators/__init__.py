"""simulators: stands in for the province's gateways, with injected faults and their ground truth."""
