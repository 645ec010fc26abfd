"""arimonitor: watches an Asterisk PBX through ARI and lets its operators steer it."""

__version__ = "3.0.0.dev0"
# Bumped when a control message changes shape; arictl checks it before the first command.
API_VERSION = 1
