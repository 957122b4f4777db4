"""One chat cycle through the generated Python client (see python-client.sh)."""

import sys

from yoi_workspace_server_client import Client
from yoi_workspace_server_client.api.workers import (
    count_workers,
    create_worker,
    list_workers,
    send_input,
    transcript,
)
from yoi_workspace_server_client.api.events import worker_events
from yoi_workspace_server_client.models import (
    CreateWorkerRequest,
    InputRequest,
    ListWorkersOrder,
    ListWorkersSort,
    ListWorkersStateItem,
    TurnCompletedEvent,
    WorkerDetail,
    WorkerPage,
)

base = sys.argv[1]
client = Client(base_url=base, raise_on_unexpected_status=True)

created = create_worker.sync(
    runtime_id="backend-internal",
    client=client,
    body=CreateWorkerRequest(display_name="python client"),
)
assert isinstance(created, WorkerDetail), created
worker_id = created.worker_id

accepted = send_input.sync(
    runtime_id="backend-internal",
    worker_id=worker_id,
    client=client,
    body=InputRequest(text="hello from python"),
)
cursor = accepted.cursor

completed = None
for _ in range(50):
    page = worker_events.sync(
        runtime_id="backend-internal",
        worker_id=worker_id,
        client=client,
        after=cursor,
        wait_ms=5000,
    )
    for event in page.events:
        if isinstance(event, TurnCompletedEvent):
            completed = event
    cursor = page.next_cursor
    if completed is not None:
        break
assert completed is not None, "the turn completed"

page = transcript.sync(runtime_id="backend-internal", worker_id=worker_id, client=client)
texts = [entry.text for entry in page.entries]
assert texts == ["hello from python", "echo: hello from python"], texts
# Find it again: idle Workers, most recently active first, one per page.
found = list_workers.sync(
    runtime_id="backend-internal",
    client=client,
    state=[ListWorkersStateItem.IDLE],
    sort=ListWorkersSort.UPDATED_AT,
    order=ListWorkersOrder.DESC,
    limit=1,
)
assert isinstance(found, WorkerPage), found
assert [w.worker_id for w in found.items] == [worker_id], found
count = count_workers.sync(runtime_id="backend-internal", client=client)
assert count.count >= 1, count

print(f"python client: chat cycle ok (worker {worker_id}, reply at index {completed.transcript_index})")
