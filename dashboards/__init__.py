"""dashboards: Grafana dashboards as code, provisioning files and push.

Not built yet (issue 7): ``meterwatch dashboards`` says so and exits 2.
"""
