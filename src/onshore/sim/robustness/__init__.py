"""Robustness tooling shared by the tests and `bench/robustness.py`: hostile input, faults, a soak.

* `strategies`: hypothesis strategies for values at their edges, byte mutations, values for a JSON schema.
* `samples`: the well-formed inputs the fuzzers start from.
* `fuzzing`: the shape of a fuzz target and of its result, and the one way a property is run.
* `decoders`: every decoder as a fuzz target (`DECODERS`, `register_decoder`, `run_decoder`); the built-in
  targets are in `decoder_targets`, the adapters' in `ft_targets` (fleet-telemetry) and `adapter_targets` (MQTT,
  the worker's bus messages).
* `matrix`: the route x role matrix, generated from the app's routes.
* `routes`: every route's parameters at their extremes, generated from the OpenAPI document.
* `faults`, `scenarios`: fault injection with real parts (`SCENARIOS`, `register_scenario`); `brokers` and
  `broker_scenarios`: private nats-server and Mosquitto brokers restarted, a worker SIGKILLed.
* `soak`: a real server driven at a steady rate, its memory and latency watched.
* `leaks`: what must never appear in anything a server writes.

These modules need the test extra (hypothesis); the product never imports them.
"""
