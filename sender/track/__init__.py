"""What comes back: provider events in one vocabulary (one translator per provider under
`track/providers/`, found by name in its registry), the event store, actions (people apart
from machines), suppressions, unsubscribes and replies."""
