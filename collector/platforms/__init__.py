"""The NB-IoT operators' platforms that push readings to the collector over HTTP (``collector.push``)."""
