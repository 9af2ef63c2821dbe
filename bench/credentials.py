"""The credential every benchmark uses: the app credential (the web backend's), made per run.

Services a benchmark starts get ENV (the key, and no per-credential rate limit or training
queue bound in the way: a benchmark measures the services, not the limits, as the gateway's
per-IP limit is raised for it too); its clients send AUTH.
"""

from __future__ import annotations

import uuid

APP_KEY = "bench-app-" + uuid.uuid4().hex
ENV = {"APP_API_KEY": APP_KEY, "RATE_LIMIT_APP_PER_S": "0", "TRAIN_QUEUE_LIMIT": "1000"}
AUTH = {"Authorization": f"Bearer {APP_KEY}"}
