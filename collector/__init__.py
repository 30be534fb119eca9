"""collector: MQTT in, validated readings and weighings out to the store.

Pure stages (topics, decoders, deltas) turn one message into points and
rejects; the service around them owns the I/O: the MQTT session, batching,
writing with retry, and acknowledging only what is durable.
"""
