"""Notifications: a pure core (`model`, `message`, `outcome`) that turns what a run did
into messages, and `dispatch`, which decides what is sent, remembers what was, and hands
messages to the Apprise adapter (`net/notify.py`)."""
