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

# A worker is about to look at the queue (each wake-up and sweep): periodic
# duties of other apps (the reviews app's deadlines) run here, in the worker,
# never in a page view. Sent with `worker_id`.
worker_sweep = Signal()
