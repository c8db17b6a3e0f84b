#!/usr/bin/env bash
# The create of a node's reset step: nothing changes on the host. The step exists so that its
# delete (k0s-reset.sh) is in Pulumi's state before k0s-node.sh installs anything: removing the
# node, or `pulumi destroy`, then resets it even when its first join failed half-way.
set -euo pipefail
log "k0s reset armed for this node (runs when the node leaves the stack)"
finish
