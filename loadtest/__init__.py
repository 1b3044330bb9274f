"""Load tests of the served model with locust: throughput, latency and correctness.

    locust -f loadtest/locustfile.py --headless -u 64 -r 64 -t 30s --host localhost:8500
    python -m loadtest --users 64 --duration 30s       # local server, reports and a plot

The modules that import locust (grpc_user, hooks, locustfile, shapes) patch the process
for gevent on import, so nothing else in the package imports them: the pure pieces
(interceptor, digits, correctness, thresholds, saturation, options, report) stay usable
from tests and tools without turning their process into a gevent one.
"""
