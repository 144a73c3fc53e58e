"""``python -m tools.layers build-districts|generate-demo`` from the root of a checkout."""
from tools.layers.commands import layers_group

layers_group()
