"""cluster-bootstrap: bare hosts over SSH → a self-managing GitOps Kubernetes cluster.

Load and validate the stack's configuration (every problem at once, before any resource),
build the layers in stage order, export the stack outputs.
"""

import pulumi

from stacks.compose import build
from stacks.config import load

config = load(pulumi.get_stack())
for warning in config.warnings():
    pulumi.log.warn(warning)
cluster = build(config)
for key, value in cluster.outputs().items():
    pulumi.export(key, value)
