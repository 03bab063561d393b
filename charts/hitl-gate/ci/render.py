"""Lint and render the hitl-gate chart with Helm's own library (helm-python-sdk: Helm v4 as a
shared library, no helm binary), offline, as `helm lint --strict` and `helm template` would.

    python render.py CHART [VALUES.yaml ...]

Prints one JSON object: {"lint": {...the lint report...}, "manifests": {template: text}}.
The values files are merged left to right over the chart's own. Exit 1 if a step raises.
"""

import json
import sys

import helm_python as helm
from helm_python.chart import Chart, values_from_yaml


def merge(base, over):
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    chart_dir, value_files = argv[1], argv[2:]
    values = {}
    for path in value_files:
        with open(path, encoding="utf-8") as f:
            merge(values, values_from_yaml(f.read()))
    lint = helm.lint(chart_dir, values, strict=True, namespace="hitl-lab")
    with Chart.load(chart_dir) as chart:
        chart.validate_schema(values)
        manifests = chart.render(
            values, name="hitl-gate", namespace="hitl-lab", is_install=True
        )
    json.dump({"lint": lint, "manifests": manifests}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
