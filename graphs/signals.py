"""The hooks the graphs side offers; the reviews side and the worker listen."""

from django.dispatch import Signal

# A run was committed to the queue: wake a worker. Sent with `run`.
run_queued = Signal()

# A run stopped with pending interrupts, inside the transaction that marks it
# interrupted: receivers create review requests in that same transaction.
# Sent with `run`, `requests` (graphs.interrupts.ReviewRequest list), the
# `checkpoint_id` the graph stopped at, and `new_checkpoint`: True when this
# run wrote that checkpoint (nothing can have been asked at it yet), False
# when it stopped again where it had stopped before.
run_interrupted = Signal()

# A run finished (succeeded, failed or cancelled). Sent with `run` and its
# new `status`, inside the transaction that records it when it succeeded.
run_finished = Signal()

# The worker's side duties are due (at each wake-up and sweep): periodic duties
# of other apps (the reviews app's webhooks and deadlines) run here, in the
# worker's duties loop (graphs.duties), never in a page view and never between
# a queued run and its claim. Sent with `worker_id`.
worker_sweep = Signal()

# The worker is stopping: receivers take no new duty and finish what they have
# in flight (a webhook attempt ends within its timeout).
worker_stopping = Signal()
